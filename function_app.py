"""Azure Functions entry point (Python v2 model): builds the app from the function modules. No logic here."""

import azure.functions as func

from functions import events, queues, timer_tick
from functions.http_api import api, http_auth_level

app = func.AsgiFunctionApp(app=api, http_auth_level=http_auth_level())
app.register_functions(timer_tick.bp)
app.register_functions(queues.bp)
app.register_functions(events.bp)
