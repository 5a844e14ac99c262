//! The log line: `2026-12-02T06:07:33.486809Z  INFO bellbook::http:
//! request method=GET path=/v1/contacts status=200 latency_ms=0.41` — the
//! layout of tracing-subscriber's default format (without colours or
//! spans, which bellbook has none of), written without its generic
//! machinery: every request logs a line, and the default format took a
//! tenth of a `GET /contacts/{uuid}`'s instructions (BENCHMARKS.md).

use std::fmt;

use time::OffsetDateTime;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats each event as one line; see the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogLine;

impl<S, N> FormatEvent<S, N> for LogLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write_line(&mut writer, OffsetDateTime::now_utc(), event)
    }
}

fn write_line(out: &mut impl fmt::Write, at: OffsetDateTime, event: &Event<'_>) -> fmt::Result {
    let mut stamp = [0u8; 27];
    out.write_str(utc_micros(at, &mut stamp))?;
    // Records of the `log` crate (r2d2, postgres) arrive as events of
    // target "log" with their own target and level in `log.*` fields.
    let normalized = event.normalized_metadata();
    let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
    out.write_str(level_column(*metadata.level()))?;
    out.write_str(metadata.target())?;
    out.write_char(':')?;
    let mut fields = Fields {
        out,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result?;
    out.write_char('\n')
}

/// The level right-aligned in five columns between single spaces.
fn level_column(level: Level) -> &'static str {
    match level {
        Level::ERROR => " ERROR ",
        Level::WARN => "  WARN ",
        Level::INFO => "  INFO ",
        Level::DEBUG => " DEBUG ",
        Level::TRACE => " TRACE ",
    }
}

/// `2026-12-02T06:07:33.486809Z` into `buffer`; years past 9999 are
/// written as 9999 (a log line's clock is the machine's, never that far).
fn utc_micros(at: OffsetDateTime, buffer: &mut [u8; 27]) -> &str {
    let mut put = |start: usize, value: u32, digits: usize| {
        let mut value = value;
        for i in (0..digits).rev() {
            buffer[start + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, u32::try_from(at.year()).unwrap_or(0).min(9999), 4);
    put(5, u32::from(u8::from(at.month())), 2);
    put(8, u32::from(at.day()), 2);
    put(11, u32::from(at.hour()), 2);
    put(14, u32::from(at.minute()), 2);
    put(17, u32::from(at.second()), 2);
    put(20, at.microsecond(), 6);
    for (index, separator) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ] {
        buffer[index] = separator;
    }
    std::str::from_utf8(buffer).unwrap_or("")
}

/// Writes ` message name=value …`: the message bare, text fields quoted as
/// the default format quotes them, `%`-fields by their `Display`.
struct Fields<'a, W: fmt::Write> {
    out: &'a mut W,
    result: fmt::Result,
}

impl<W: fmt::Write> Fields<'_, W> {
    /// Writes ` name=` (only the space for the message) and then the value,
    /// unless an earlier field failed to write. The `log.*` fields of a
    /// `log` record are left out: they say where it came from, which its
    /// normalized metadata has already said.
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        self.result = (|| {
            self.out.write_char(' ')?;
            if field.name() != "message" {
                self.out.write_str(field.name())?;
                self.out.write_char('=')?;
            }
            value(self.out)
        })();
    }
}

impl<W: fmt::Write> Visit for Fields<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let bare = field.name() == "message";
        self.field(field, |out| {
            if bare {
                out.write_str(value)
            } else {
                write!(out, "{value:?}")
            }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| {
            out.write_str(itoa::Buffer::new().format(value))
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| {
            out.write_str(itoa::Buffer::new().format(value))
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |out| write!(out, "{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    fn captured(log: impl FnOnce()) -> String {
        let sink = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(LogLine)
            .with_writer(sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = sink.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn lines_read_like_the_default_format() {
        let path = "/v1/contacts";
        let line = captured(|| {
            tracing::info!(
                target: "bellbook::http",
                method = %"GET",
                %path,
                status = 200_u16,
                latency_ms = format_args!("{:.2}", 0.4149),
                "request"
            );
            tracing::warn!(reason = "a \"quoted\" reason", count = -3_i64, "slow");
        });
        let lines: Vec<&str> = line.lines().collect();
        assert_eq!(lines.len(), 2, "{line}");
        let (stamp, rest) = lines[0].split_at(27);
        assert!(
            OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339).is_ok(),
            "{stamp}"
        );
        assert_eq!(
            rest,
            "  INFO bellbook::http: request method=GET path=/v1/contacts status=200 latency_ms=0.41"
        );
        assert!(
            lines[1].ends_with(
                "  WARN bellbook::logging::tests: slow reason=\"a \\\"quoted\\\" reason\" count=-3"
            ),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn records_of_the_log_crate_show_their_own_target_and_level() {
        // Global, once: what `init()` installs in the server.
        let _ = tracing_log::LogTracer::init();
        let line = captured(|| log::warn!(target: "r2d2", "connection {} failed", 3));
        assert!(
            line.ends_with("  WARN r2d2: connection 3 failed\n"),
            "{line}"
        );
    }

    #[test]
    fn timestamps_have_microseconds_and_a_z() {
        let at =
            OffsetDateTime::from_unix_timestamp_nanos(1_606_424_933_486_809_123).expect("time");
        let mut buffer = [0u8; 27];
        assert_eq!(utc_micros(at, &mut buffer), "2020-11-26T21:08:53.486809Z");
    }
}
