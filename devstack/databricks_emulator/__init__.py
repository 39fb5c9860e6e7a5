"""A local Databricks Jobs API 2.2 emulator: a DEVELOPMENT AND TEST TOOL, never deployed.

Nothing under ``functions/`` or ``shared/`` may import it; it is not part of the Function App. It serves the
endpoints the scheduler uses through the real ``databricks-sdk`` on 127.0.0.1 (``/api/2.2/`` and the
``/api/2.1/`` alias): ``jobs/create``, ``jobs/get``, ``jobs/list``, ``jobs/run-now``, ``jobs/runs/submit``,
``jobs/runs/get``, ``jobs/runs/list``, ``jobs/runs/cancel`` and ``jobs/runs/get-output``.

    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config
    from devstack.databricks_emulator import Emulator

    with Emulator(setup_delay=0.05) as emulator:
        client = WorkspaceClient(config=Config(host=emulator.url, token="dev-token", auth_type="pat"))
        run_id = client.jobs.submit(run_name="x", tasks=[...]).run_id

Runs: ``spark_python_task`` executes its ``python_file`` with local Python (``file:`` URLs and local absolute
paths as they are, ``dbfs:/x`` as ``<workspace_root>/dbfs/x``, other paths under ``workspace_root``); job
parameters follow the task's own parameters as ``--name=value`` and are also set as environment variables
``DATABRICKS_JOB_PARAM_<NAME>`` (upper-cased). ``notebook_task`` and ``python_wheel_task`` are simulated:
they succeed after ``simulated_task_seconds``. Life cycle: PENDING (``setup_delay``) -> RUNNING ->
TERMINATED with SUCCESS (exit 0) or FAILED / RUN_EXECUTION_ERROR / CLIENT_ERROR; ``runs/cancel`` kills the
process group and the run ends CANCELED / USER_CANCELED. ``runs/get-output`` takes a *task* run id.

Fault injection: Python methods on :class:`Emulator`, or ``POST /emulator/faults`` with the same keyword
arguments plus ``"kind"`` (in brackets):

- ``fail_requests(endpoint, status=429, times=1, retry_after=None, message=None, error_code=None)``
  [``http_error``]: the next ``times`` requests answer ``status`` in the Databricks error shape; 429 and 503
  carry ``Retry-After`` (default 1 s).
- ``slow_requests(endpoint, delay=..., times=None)`` [``slow``]: delay responses (None: every one).
- ``fail_runs(code="CLUSTER_ERROR", type="CLOUD_FAILURE", message=None, life_cycle_state="TERMINATED",
  result_state="FAILED", times=1)`` [``run_failure``]: the next new runs end after setup with this
  termination and execute nothing (``life_cycle_state="INTERNAL_ERROR"`` is allowed).
- ``hang_runs(times=1)`` [``run_hang``]: RUNNING, executing nothing, until cancelled.
- ``hold_runs(state="QUEUED", seconds=None, times=1)`` [``run_hold``]: show QUEUED, BLOCKED or
  WAITING_FOR_RETRY first (None: until cancelled), then run normally.

``endpoint`` is e.g. ``"jobs/run-now"`` or ``"*"``. Also: ``GET /emulator/state``, ``POST /emulator/reset``
(``reset()``), and for assertions ``runs()``, ``starts_for_token(token)``, ``requests_for_token(token)`` and
``calls`` (requests per endpoint). See README.md for details and the databricks-sdk quirks it exposes.
"""

from devstack.databricks_emulator.faults import HttpFault, RunFault, SlowFault
from devstack.databricks_emulator.server import Emulator
from devstack.databricks_emulator.workspace import RunInfo

__all__ = ["Emulator", "HttpFault", "RunFault", "RunInfo", "SlowFault"]
