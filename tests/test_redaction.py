import io
import json

from ratesvc.log import configure_logging, get_logger
from ratesvc.redact import redact_url


def test_redact_url_masks_password_and_key_parameters() -> None:
    url = "postgresql://app:s3cret@db:5432/app?apiKey=abc&sslmode=require"
    cleaned = redact_url(url)
    assert "s3cret" not in cleaned
    assert "abc" not in cleaned
    assert "sslmode=require" in cleaned
    assert cleaned.startswith("postgresql://app:***@db:5432/app")


def test_log_lines_never_carry_secrets() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", secrets=["KEY-123456"], stream=stream, json=True)
    try:
        logger = get_logger("test")
        logger.info("calling", url="https://api.polygon.io/v2/aggs?apiKey=KEY-123456")
        logger.warning("failed", error=ValueError("rejected key KEY-123456"))
        logger.info("connected", redis="redis://user:pa55word@cache:6379/0")
        try:
            raise RuntimeError("KEY-123456 in a traceback")
        except RuntimeError:
            logger.exception("crashed")
    finally:
        configure_logging("DEBUG", json=True)
    output = stream.getvalue()
    assert "KEY-123456" not in output
    assert "pa55word" not in output
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["component"] for line in lines] == ["test"] * 4
    assert lines[0]["level"] == "info"


def test_stdlib_log_lines_carry_component_and_are_scrubbed() -> None:
    import logging

    stream = io.StringIO()
    configure_logging("INFO", secrets=["TOPSECRET"], stream=stream, json=True)
    try:
        logging.getLogger("uvicorn.error").warning("bad key TOPSECRET")
    finally:
        configure_logging("DEBUG", json=True)
    line = json.loads(stream.getvalue())
    assert line["component"] == "uvicorn.error"
    assert "TOPSECRET" not in line["event"]
