//! The Markdown report: one row per request shape beside the raw limit it
//! is read against, the raw limits themselves, then the run's context.

use std::fmt::Write;
use std::time::Duration;

use crate::load::{Ask, Ceiling, Measured, Script, Shape};
use crate::raw::{Limit, Limits};

/// Everything the report says.
pub struct Report<'a> {
    pub contacts: u64,
    pub backend: &'a str,
    pub shapes: &'a [Shape],
    pub measured: &'a [Measured],
    pub limits: &'a Limits,
    pub rss_at_start_kib: u64,
    pub rss_peak_kib: u64,
    pub import: Duration,
    pub cursor_walk_pages: u64,
    pub duration: u32,
    pub repeat: u32,
    pub wrk_command: String,
    pub server_command: String,
    pub bellbook: String,
    pub machine: String,
    pub date: String,
}

impl Report<'_> {
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "### bellbook at {} contacts, {}",
            count(self.contacts),
            self.backend
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "| request | req/s | p50 | p99 | non-2xx | raw limit (same run) | raw | ratio |"
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---|---:|---:|")?;
        let mut post_rps = None;
        let mut patch_rps = None;
        for (shape, measured) in self.shapes.iter().zip(self.measured) {
            let median = measured.median();
            match shape.script {
                Script::Post => post_rps = Some(median.rps),
                Script::Sampled(Ask::Patch) => patch_rps = Some(median.rps),
                _ => {}
            }
            let limit = self.limits.get(match shape.ceiling {
                Ceiling::Insert => self.limits.insert,
                Ceiling::Lookup => self.limits.lookup,
                Ceiling::Page => self.limits.page,
            });
            let (limit_name, limit_rate, ratio_text) = match limit {
                Some(limit) => {
                    let raw = limit.median().per_second;
                    let mut name = limit.what.clone();
                    if matches!(shape.script, Script::Sampled(Ask::Patch)) {
                        name.push_str(" (target: PATCH/POST, below)");
                    }
                    (
                        name,
                        format!("{}/s", count(raw.round() as u64)),
                        ratio(median.rps / raw),
                    )
                }
                None => ("not measured".to_owned(), "–".to_owned(), "–".to_owned()),
            };
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                shape.label,
                count(median.rps.round() as u64),
                micros(median.p50_us),
                micros(median.p99_us),
                failures(measured),
                limit_name,
                limit_rate,
                ratio_text
            )?;
        }
        writeln!(out)?;
        if let (Some(post), Some(patch)) = (post_rps, patch_rps) {
            writeln!(out, "PATCH/POST = {:.2}", patch / post)?;
            writeln!(out)?;
        }
        writeln!(
            out,
            "ratio = bellbook req/s ÷ raw limit. The median of {} of {} s each; \
             non-2xx and socket errors are summed over all of them.",
            plural(u64::from(self.repeat), "run", "runs"),
            self.duration
        )?;
        writeln!(out)?;

        writeln!(out, "#### Raw limits of this machine (same run, core 0)")?;
        writeln!(out)?;
        writeln!(out, "| raw limit | rate | p50 | p99 |")?;
        writeln!(out, "|---|---:|---:|---:|")?;
        for limit in &self.limits.all {
            write_limit(out, limit)?;
        }
        writeln!(out)?;

        writeln!(
            out,
            "- server peak RSS (VmHWM): {:.0} MB after start, {:.0} MB after all shapes",
            self.rss_at_start_kib as f64 / 1024.0,
            self.rss_peak_kib as f64 / 1024.0
        )?;
        let import_s = self.import.as_secs_f64();
        write!(
            out,
            "- import of {} contacts: {:.1} s ({}/s)",
            count(self.contacts),
            import_s,
            count((self.contacts as f64 / import_s).round() as u64)
        )?;
        if let Some(bulk) = self.limits.get(self.limits.bulk_insert) {
            write!(
                out,
                "; raw SQLite at 20 000/tx would load them in {:.1} s",
                self.contacts as f64 / bulk.median().per_second
            )?;
        }
        writeln!(out)?;
        let created: u64 = self
            .shapes
            .iter()
            .zip(self.measured)
            .filter(|(shape, _)| matches!(shape.script, Script::Post))
            .map(|(_, measured)| measured.requests() - measured.non2xx())
            .sum();
        writeln!(
            out,
            "- the POST shape added {} before the shapes after it ran; \
             reaching the deep cursor took {}",
            plural(created, "contact", "contacts"),
            plural(self.cursor_walk_pages, "page request", "page requests")
        )?;
        if let Some(settings) = &self.limits.postgres_settings {
            writeln!(
                out,
                "- PostgreSQL: {settings}; ANALYZE run after the import (autovacuum \
                 would run it a minute or so later)"
            )?;
        }
        writeln!(out, "- machine: {}", self.machine)?;
        writeln!(out, "- date: {}", self.date)?;
        writeln!(
            out,
            "- N = {} contacts, duration {} s, {}, backend {}",
            count(self.contacts),
            self.duration,
            plural(u64::from(self.repeat), "repeat", "repeats"),
            self.backend
        )?;
        writeln!(out, "- bellbook: {}", self.bellbook)?;
        writeln!(out, "- server: `{}`", self.server_command)?;
        writeln!(
            out,
            "- load: `{}`, SCRIPT being bench/lua/common.lua followed by static.lua, \
             post.lua, sampled.lua or searches.lua",
            self.wrk_command
        )?;
        writeln!(
            out,
            "- raw limits: one thread pinned to core 0 (SQLite with the server's pragmas: \
             WAL, synchronous=FULL, foreign_keys, cache_size 8 MiB; PostgreSQL's reads: \
             {} threads on core 0, a connection each); raw HTTP: axum 0.8 answering the \
             captured bodies, pinned to core 0, same wrk command",
            crate::raw::POSTGRES_READ_CONNECTIONS
        )?;
        Ok(())
    }
}

fn write_limit(out: &mut String, limit: &Limit) -> std::fmt::Result {
    let median = limit.median();
    writeln!(
        out,
        "| {} | {} {}/s | {}/{} | {}/{} |",
        limit.what,
        count(median.per_second.round() as u64),
        limit.unit,
        micros(median.p50_us),
        limit.latency_of,
        micros(median.p99_us),
        limit.latency_of
    )
}

fn failures(measured: &Measured) -> String {
    let non2xx = measured.non2xx();
    match measured.socket_errors() {
        0 => count(non2xx),
        errors => format!("{} + {} socket errors", count(non2xx), count(errors)),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// A count with spaces between thousands: `1 000 000`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(digit);
    }
    out
}

/// A duration given in microseconds, in µs or ms as fits.
pub fn micros(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 10_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.1} ms", us / 1000.0)
    }
}

/// A ratio with at least two significant digits.
fn ratio(x: f64) -> String {
    if !x.is_finite() {
        "–".to_owned()
    } else if x >= 0.1 {
        format!("{x:.2}")
    } else if x >= 0.01 {
        format!("{x:.3}")
    } else {
        format!("{x:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_group_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1 000");
        assert_eq!(count(1_000_000), "1 000 000");
    }

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(micros(812.4), "812 µs");
        assert_eq!(micros(4100.0), "4.10 ms");
        assert_eq!(micros(31_260.0), "31.3 ms");
    }
}
