"""The e-mails (SPEC section 8). Built without I/O: ``message`` (kinds, Message-ID, headers,
templates), ``formats``, ``kpi_table``, ``charts``, ``alert_view``, and one module per message:
``weekly_summary``, ``alert_message``, ``data_quality_failure``, ``delivery_report``. Sent exactly
once: ``smtp`` (the server), ``send_log`` (the store of sends), ``send`` (``send_once``, the sends)."""
