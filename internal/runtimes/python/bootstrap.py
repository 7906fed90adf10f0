"""shoal's Python bootstrap: runs a handler written for AWS Lambda
("module.function") against the Lambda Runtime API at AWS_LAMBDA_RUNTIME_API.

With AWS_LAMBDA_MAX_CONCURRENCY=N (N > 1) it forks N worker processes, each
doing its own init and serving one invocation at a time; a worker that dies
is replaced.
"""
import http.client
import importlib
import json
import logging
import os
import socket
import sys
import time
import traceback

API = os.environ.get("AWS_LAMBDA_RUNTIME_API", "")
BASE = "/2018-06-01/runtime"
_current = {"id": ""}


class _Conn(http.client.HTTPConnection):
    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Client:
    def __init__(self):
        self.conn = _Conn(API)

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                return r.status, r.headers, r.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = _Conn(API)
                if attempt:
                    raise

    def post(self, path, body, error_type=None):
        headers = {"Content-Type": "application/json"}
        if error_type:
            headers["Lambda-Runtime-Function-Error-Type"] = error_type
        status, _, data = self.request("POST", path, body, headers)
        if status != 202:
            sys.stderr.write("%s answered %d: %s\n" % (path, status, data[:200]))
            if status != 413:
                sys.exit(1)


class CognitoIdentity:
    def __init__(self, d):
        self.cognito_identity_id = d.get("cognitoIdentityId") or d.get("cognito_identity_id")
        self.cognito_identity_pool_id = d.get("cognitoIdentityPoolId") or d.get("cognito_identity_pool_id")


class Client_:
    def __init__(self, d):
        self.installation_id = d.get("installation_id")
        self.app_title = d.get("app_title")
        self.app_version_name = d.get("app_version_name")
        self.app_version_code = d.get("app_version_code")
        self.app_package_name = d.get("app_package_name")


class ClientContext:
    def __init__(self, d):
        self.client = Client_(d["client"]) if isinstance(d.get("client"), dict) else None
        self.custom = d.get("custom")
        self.env = d.get("env")


class LambdaContext:
    def __init__(self, request_id, deadline_ms, invoked_arn, client_context, identity, tenant_id=None):
        env = os.environ
        self.tenant_id = tenant_id
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self._deadline_ms = deadline_ms
        self.identity = CognitoIdentity(_json_or(identity, {}))
        cc = _json_or(client_context, None)
        self.client_context = ClientContext(cc) if isinstance(cc, dict) else None

    def get_remaining_time_in_millis(self):
        return int(max(self._deadline_ms - time.time() * 1000, 0))


def _json_or(s, default):
    if not s:
        return default
    try:
        return json.loads(s)
    except ValueError:
        return default


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _current["id"]
        if _current.get("tenant_id"):
            record.tenant_id = _current["tenant_id"]
        return True


# With AWS_LAMBDA_LOG_FORMAT=JSON the logging module writes one JSON object a
# line, in the shape of Lambda's Python runtime: timestamp, level, message,
# logger, requestId (and errorType, errorMessage, stackTrace, location for an
# exception, and any extra= fields). print() output is left as it is, as Lambda
# leaves it.
JSON_LOGS = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"

# Attributes of a LogRecord that are not extra= fields.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "aws_request_id", "tenant_id", "taskName"}


def _timestamp(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


class _JsonFormatter(logging.Formatter):
    def format(self, record):
        level = min(50, max(0, record.levelno)) // 10 * 10
        out = {
            "timestamp": _timestamp(record.created),
            "level": logging.getLevelName(level),
            "message": record.getMessage(),
            "logger": record.name,
        }
        if record.exc_info:
            out["stackTrace"] = traceback.format_tb(record.exc_info[2])
            out["errorType"] = record.exc_info[0].__name__
            out["errorMessage"] = str(record.exc_info[1])
        out["requestId"] = getattr(record, "aws_request_id", None) or None
        if record.exc_info:
            out["location"] = "%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
        if getattr(record, "tenant_id", None):
            out["tenantId"] = record.tenant_id
        for k, v in vars(record).items():
            if k not in _RECORD_FIELDS and k not in out:
                out[k] = v
        out = {k: v for k, v in out.items() if v is not None}
        return json.dumps(out, ensure_ascii=False, default=str)


def _setup_logging():
    h = logging.StreamHandler(sys.stdout)
    h.addFilter(_RequestIdFilter())
    if JSON_LOGS:
        h.setFormatter(_JsonFormatter())
    else:
        fmt = logging.Formatter("[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
                                "%Y-%m-%dT%H:%M:%S")
        fmt.converter = time.gmtime
        h.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers = [h]
    # AWS_LAMBDA_LOG_LEVEL sets the root logger's level (Python has no TRACE:
    # it is DEBUG); without it the level stays Python's default, WARNING.
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    level = "DEBUG" if level == "TRACE" else level
    if level in ("DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL"):
        root.setLevel(level)


class InitFault(Exception):
    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


def _trace(tb, skip=0):
    return traceback.format_list(traceback.extract_tb(tb)[skip:])


def load_handler(handler):
    root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError:
        raise InitFault("Runtime.MalformedHandlerName",
                        "Bad handler '%s': not enough values to unpack (expected 2, got 1)" % handler)
    modname = modname.replace("/", ".")
    try:
        mod = importlib.import_module(modname)
    except ImportError as e:
        raise InitFault("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        raise InitFault("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, e),
                        _trace(e.__traceback__, 1))
    except Exception as e:
        raise InitFault(type(e).__name__, str(e), _trace(e.__traceback__, 1))
    fn = getattr(mod, fname, None)
    if fn is None:
        raise InitFault("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname))
    return fn


def error_body(e, request_id, tb):
    return {"errorMessage": str(e), "errorType": type(e).__name__, "requestId": request_id,
            "stackTrace": _trace(tb, 1)}


def log_error(body):
    if JSON_LOGS:
        rec = {"timestamp": _timestamp(time.time()), "level": "ERROR"}
        rec.update(body)
        sys.stdout.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
        return
    lines = ["[ERROR] %s: %s" % (body["errorType"], body["errorMessage"])]
    if body.get("stackTrace"):
        lines.append("Traceback (most recent call last):")
        lines.extend(s.rstrip("\n") for s in body["stackTrace"])
    sys.stdout.write("\n".join(lines) + "\n")


def serve(client, fn):
    while True:
        status, h, body = client.request("GET", BASE + "/invocation/next")
        if status != 200:
            sys.stderr.write("invocation/next answered %d\n" % status)
            sys.exit(1)
        rid = h.get("Lambda-Runtime-Aws-Request-Id", "")
        _current["id"] = rid
        _current["tenant_id"] = h.get("Lambda-Runtime-Aws-Tenant-Id")
        trace_id = h.get("Lambda-Runtime-Trace-Id")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        ctx = LambdaContext(rid, int(h.get("Lambda-Runtime-Deadline-Ms", "0") or 0),
                            h.get("Lambda-Runtime-Invoked-Function-Arn", ""),
                            h.get("Lambda-Runtime-Client-Context"), h.get("Lambda-Runtime-Cognito-Identity"),
                            h.get("Lambda-Runtime-Aws-Tenant-Id"))
        try:
            event = json.loads(body) if body else None
        except ValueError as e:
            err = {"errorMessage": "Unable to unmarshal input: %s" % e, "errorType": "Runtime.UnmarshalError",
                   "requestId": rid, "stackTrace": []}
            client.post("%s/invocation/%s/error" % (BASE, rid), json.dumps(err), err["errorType"])
            continue
        try:
            result = fn(event, ctx)
        except Exception as e:
            err = error_body(e, rid, e.__traceback__)
            log_error(err)
            client.post("%s/invocation/%s/error" % (BASE, rid), json.dumps(err), err["errorType"])
            continue
        try:
            out = json.dumps(result)
        except (TypeError, ValueError) as e:
            err = {"errorMessage": "Unable to marshal response: %s" % e, "errorType": "Runtime.MarshalError",
                   "requestId": rid, "stackTrace": []}
            log_error(err)
            client.post("%s/invocation/%s/error" % (BASE, rid), json.dumps(err), err["errorType"])
            continue
        client.post("%s/invocation/%s/response" % (BASE, rid), out.encode())


class _LineWriter:
    """Writes whole lines with one write() each, so that the lines of
    concurrent worker processes sharing the log pipe do not interleave."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, fd):
        self._fd = fd
        self._buf = ""

    def write(self, s):
        self._buf += s
        if "\n" in self._buf:
            head, _, self._buf = self._buf.rpartition("\n")
            os.write(self._fd, (head + "\n").encode("utf-8", "replace"))
        return len(s)

    def flush(self):
        if self._buf:
            os.write(self._fd, self._buf.encode("utf-8", "replace"))
            self._buf = ""

    def isatty(self):
        return False

    def fileno(self):
        return self._fd

    def writable(self):
        return True


def worker(multi=False):
    if multi:
        sys.stdout = _LineWriter(1)
        sys.stderr = _LineWriter(2)
    client = Client()
    _setup_logging()
    try:
        fn = load_handler(os.environ.get("_HANDLER", ""))
    except InitFault as f:
        err = {"errorMessage": f.message, "errorType": f.error_type, "requestId": "", "stackTrace": f.trace}
        log_error(err)
        client.post(BASE + "/init/error", json.dumps(err), f.error_type)
        sys.exit(1)
    serve(client, fn)


def main():
    try:
        n = int(os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY", "1"))
    except ValueError:
        n = 1
    if n <= 1:
        worker()
        return
    children = {}
    delay = 0.0

    def spawn():
        pid = os.fork()
        if pid == 0:
            try:
                worker(multi=True)
            finally:
                os._exit(1)
        children[pid] = time.monotonic()

    for _ in range(n):
        spawn()
    while children:
        pid, status = os.wait()
        started = children.pop(pid, None)
        sys.stderr.write("worker %d exited (status %d); starting another\n" % (pid, status))
        # A worker that dies at once (a failing init) is restarted ever more slowly.
        if started is not None and time.monotonic() - started < 1.0:
            delay = min(max(delay * 2, 0.1), 5.0)
            time.sleep(delay)
        else:
            delay = 0.0
        spawn()


if __name__ == "__main__":
    main()
