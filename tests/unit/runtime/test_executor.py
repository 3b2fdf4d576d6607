"""include/investor_metrics/runtime/executor.py: the LocalExecutor that imports the pipeline's
libraries before forking."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from include.investor_metrics.runtime.executor import DEFAULT_PRELOAD_MODULES, preload, preload_modules
from tests.conftest import PROJECT_ROOT


def test_module_list_from_environment():
    assert preload_modules({}) == DEFAULT_PRELOAD_MODULES
    assert preload_modules({"INVESTOR_PRELOAD_MODULES": ""}) == ()
    assert preload_modules({"INVESTOR_PRELOAD_MODULES": " json , include.investor_metrics.period,"}) == (
        "json", "include.investor_metrics.period")


def test_project_modules_are_not_preloaded():
    # A preloaded module stays as the scheduler imported it: the project's own code must not be,
    # so that an edit to include/ takes effect in the next task without a restart.
    assert not [m for m in DEFAULT_PRELOAD_MODULES
                if m == "include" or m.startswith(("include.", "dags", "plugins"))]


def test_default_list_names_importable_modules():
    # The scheduler would log a warning for each one that is not: keep the list true.
    script = ("from include.investor_metrics.runtime.executor import preload, DEFAULT_PRELOAD_MODULES; "
              "import json; print(json.dumps(preload(DEFAULT_PRELOAD_MODULES)))")
    out = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    timings = json.loads(out.strip().splitlines()[-1])
    assert set(timings) == set(DEFAULT_PRELOAD_MODULES)
    assert [m for m, t in timings.items() if t is None] == []


def test_a_module_that_fails_is_skipped_and_logged(caplog):
    timings = preload(("json", "include.no_such_module_here"))
    assert timings["json"] is not None
    assert timings["include.no_such_module_here"] is None
    assert "could not import include.no_such_module_here" in caplog.text


def test_workers_are_forked_after_the_preload(tmp_path):
    """In a fresh interpreter: before start() the module is absent; start() imports it and only
    then forks the workers, so a worker (and every task process it forks) has it."""
    script = textwrap.dedent("""
        import json, multiprocessing, os, sys
        os.environ["INVESTOR_PRELOAD_MODULES"] = "dev.demo_data.generator"
        from include.investor_metrics.runtime.executor import PreloadingLocalExecutor

        def probe(queue):
            queue.put("dev.demo_data.generator" in sys.modules)

        before = "dev.demo_data.generator" in sys.modules
        executor = PreloadingLocalExecutor(parallelism=1)
        executor.start()
        after = "dev.demo_data.generator" in sys.modules
        workers = len(executor.workers)
        q = multiprocessing.Queue()
        child = multiprocessing.Process(target=probe, args=(q,))  # forked like the executor's workers
        child.start(); child.join()
        executor.end()
        print(json.dumps({"before": before, "after": after, "workers": workers, "child": q.get()}))
    """)
    env_run = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=300)
    assert env_run.returncode == 0, env_run.stderr[-3000:]
    result = json.loads(env_run.stdout.strip().splitlines()[-1])
    assert result == {"before": False, "after": True, "workers": 1, "child": True}
