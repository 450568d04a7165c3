"""The worker process: configuration, connection and registration of workflows and activities."""

import logging
import os
import sys

from worker.main import main

code = main()
# Leave without interpreter finalization: the SDK's core threads can abort it with
# "PyGILState_Release ... must be current" (sdk-python #300), turning a clean exit into -6.
logging.shutdown()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
