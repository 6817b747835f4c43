"""How silver reads bronze's text (SPEC.md, "Silver"): small column functions, each a Spark Column
expression that is NULL for text the contract does not accept, so a table's reject rules
(`batch_platform.schemas.silver`) need only ask whether the parsed value is NULL. The table
declarations name a parser per column; the parsers know nothing of tables.

Parsing (after trimming white space at both ends: any Unicode white space, so tabs, line breaks
and no-break spaces too):
- customer_id: empty → invalid.
- timestamps: exactly `YYYY-MM-DD`, or `YYYY-MM-DD` + (` ` or `T`) + `HH:MM:SS`, optionally
  followed by a fraction of 1 to 9 digits, then optionally `Z` or `±HH:MM`. A bare date is
  midnight UTC; no offset means UTC. The shape is checked by a regular expression first (Spark's
  own parser accepts more than the contract), then the text is rewritten to one canonical form
  with an explicit offset and parsed strictly, so impossible dates and times (`2024-13-45`,
  `2024-02-30`, `25:00:00`, `+19:00`) are invalid and the result never depends on the session's,
  the JVM's or the machine's time zone. Fractions beyond microseconds are truncated (Spark keeps
  microseconds). Lower-case `t`/`z` and a zone on a bare date are not in the contract: invalid.
- amount, partner_score: `[+-]digits[.digits]` or `[+-].digits`, optionally `e±N`; cast to double.
  `12,50`, `NaN`, `Infinity` and values that overflow a double (`1e999`) are invalid.
- monthly_charges: a decimal number as above.
- signup_date: `YYYY-MM-DD`, or a timestamp as above, taking its UTC date.
- currency, channel, log_event_type, partner_segment, source_system, contract, payment_method,
  email: trimmed, lower case; country: trimmed, upper case; blank → NULL.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

WHITESPACE_EDGES = r"(?U)^\s+|\s+$"
"""White space at either end of a value: any Unicode white space (tabs, line breaks, no-break
spaces), which is what silver trims."""

TIMESTAMP_SHAPE = r"^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?)?$"
CANONICAL_TIMESTAMP = "yyyy-MM-dd HH:mm:ss.SSSSSSXXX"
NUMBER_SHAPE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def trimmed(value: Column) -> Column:
    return F.regexp_replace(value, WHITESPACE_EDGES, "")


def clean_text(value: Column) -> Column:
    """Trimmed; NULL when nothing is left."""
    return F.nullif(trimmed(value), F.lit(""))


def clean_category(value: Column) -> Column:
    return F.lower(clean_text(value))


def clean_upper(value: Column) -> Column:
    return F.upper(clean_text(value))


def parse_timestamp(value: Column) -> Column:
    """The UTC instant an ISO-8601 text of the contract names; NULL for anything else."""
    text = trimmed(value)
    day, time, fraction, zone = (F.regexp_extract(text, TIMESTAMP_SHAPE, group) for group in (1, 2, 3, 4))
    canonical = F.concat(
        day,
        F.lit(" "),
        F.when(time == "", F.lit("00:00:00")).otherwise(time),
        F.lit("."),
        F.rpad(fraction, 6, "0"),
        F.when(zone.isin("", "Z"), F.lit("+00:00")).otherwise(zone),
    )
    return F.when(text.rlike(TIMESTAMP_SHAPE), F.try_to_timestamp(canonical, F.lit(CANONICAL_TIMESTAMP)))


def parse_date(value: Column) -> Column:
    """The UTC date of an ISO-8601 text of the contract (a bare date is itself); NULL for anything
    else. Computed from the instant's epoch seconds, so no session or JVM time zone is involved."""
    seconds = F.unix_seconds(parse_timestamp(value))
    return F.date_from_unix_date(F.floor(seconds / 86400).cast("int"))


def parse_number(value: Column) -> Column:
    """A finite double from decimal text (`12.5`, `-3.20`, `1e3`); NULL for anything else."""
    text = trimmed(value)
    number = F.when(text.rlike(NUMBER_SHAPE), text.try_cast("double"))
    return F.when(~F.isnan(number) & (F.abs(number) < float("inf")), number)


def as_is(value: Column) -> Column:
    return value
