# Loaded by Python at start-up when this directory is on PYTHONPATH: moves the
# clock the aws CLI signs requests with by SHOAL_TEST_CLOCK_SKEW seconds, as on a
# machine whose clock is off, and changes nothing else. The end-to-end tests use
# it for the CLI's clock-skew errors (faketime is not available there).
import datetime
import os
import types

_skew = datetime.timedelta(seconds=int(os.environ.get("SHOAL_TEST_CLOCK_SKEW", "0")))

if _skew:
    try:
        import awscli  # noqa: F401  (Debian's aws CLI v2 makes its bundled botocore importable)
    except ImportError:
        pass
    import botocore.auth as _auth

    if hasattr(_auth, "get_current_datetime"):  # botocore >= 1.34
        _now = _auth.get_current_datetime
        _auth.get_current_datetime = lambda *a, **k: _now(*a, **k) + _skew
    else:  # older botocore reads datetime.datetime.utcnow()

        class _SkewedDatetime(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return datetime.datetime.utcnow() + _skew

            @classmethod
            def now(cls, tz=None):
                return datetime.datetime.now(tz) + _skew

        _shim = types.ModuleType("datetime")
        _shim.__dict__.update(datetime.__dict__)
        _shim.datetime = _SkewedDatetime
        _auth.datetime = _shim
