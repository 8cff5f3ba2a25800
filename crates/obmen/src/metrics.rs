//! A small Prometheus registry: counters and one latency histogram, rendered as text at
//! `/metrics`. Fixed label sets keep it lock-free.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use exchange::protocol::Mode;

const MODES: [Mode; 7] = [
    Mode::CheckAuth,
    Mode::Init,
    Mode::Query,
    Mode::Success,
    Mode::File,
    Mode::Import,
    Mode::Info,
];

/// Latency bucket upper bounds in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0];

/// Kinds of errors counted by `obmen_errors_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Wrong or missing credentials.
    Auth,
    /// A protocol-level failure answered to 1C (bad request, bad file, …).
    Protocol,
    /// A document-level message (unknown status, unknown order).
    Document,
    /// Database or other internal failure.
    Internal,
    /// A rejected store API request.
    Api,
}

const KINDS: [ErrorKind; 5] = [
    ErrorKind::Auth,
    ErrorKind::Protocol,
    ErrorKind::Document,
    ErrorKind::Internal,
    ErrorKind::Api,
];

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Protocol => "protocol",
            Self::Document => "document",
            Self::Internal => "internal",
            Self::Api => "api",
        }
    }

    fn index(self) -> usize {
        KINDS.iter().position(|k| *k == self).unwrap_or(0)
    }
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// The registry.
#[derive(Debug, Default)]
pub struct Metrics {
    sessions: AtomicU64,
    orders_exported: AtomicU64,
    documents_imported: AtomicU64,
    status_changes_from_1c: AtomicU64,
    errors: [AtomicU64; KINDS.len()],
    requests: [Histogram; MODES.len()],
}

fn mode_index(mode: Mode) -> usize {
    MODES.iter().position(|m| *m == mode).unwrap_or(0)
}

impl Metrics {
    /// A new session was opened (`checkauth`).
    pub fn session_opened(&self) {
        self.sessions.fetch_add(1, Ordering::Relaxed);
    }

    /// Orders written into a `query` answer.
    pub fn orders_exported(&self, n: u64) {
        self.orders_exported.fetch_add(n, Ordering::Relaxed);
    }

    /// Documents applied by an import.
    pub fn documents_imported(&self, n: u64) {
        self.documents_imported.fetch_add(n, Ordering::Relaxed);
    }

    /// Status changes applied from 1C.
    pub fn status_changes(&self, n: u64) {
        self.status_changes_from_1c.fetch_add(n, Ordering::Relaxed);
    }

    /// One error of a kind.
    pub fn error(&self, kind: ErrorKind) {
        self.errors[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// One exchange request of `mode` took `elapsed`.
    pub fn request(&self, mode: Mode, elapsed: Duration) {
        let h = &self.requests[mode_index(mode)];
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        h.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let counter = |s: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(s, "{name} {}", v.load(Ordering::Relaxed));
        };
        counter(
            &mut s,
            "obmen_sessions_total",
            "Exchange sessions opened by checkauth.",
            &self.sessions,
        );
        counter(
            &mut s,
            "obmen_orders_exported_total",
            "Orders written into query answers.",
            &self.orders_exported,
        );
        counter(
            &mut s,
            "obmen_documents_imported_total",
            "Documents from 1C applied by imports.",
            &self.documents_imported,
        );
        counter(
            &mut s,
            "obmen_status_changes_from_1c_total",
            "Order status changes applied from 1C.",
            &self.status_changes_from_1c,
        );
        let _ = writeln!(
            s,
            "# HELP obmen_errors_total Errors by kind.\n# TYPE obmen_errors_total counter"
        );
        for k in KINDS {
            let _ = writeln!(
                s,
                "obmen_errors_total{{kind=\"{}\"}} {}",
                k.as_str(),
                self.errors[k.index()].load(Ordering::Relaxed)
            );
        }
        let name = "obmen_exchange_request_duration_seconds";
        let _ = writeln!(
            s,
            "# HELP {name} Exchange request latency by mode.\n# TYPE {name} histogram"
        );
        for m in MODES {
            let h = &self.requests[mode_index(m)];
            let mode = m.as_str();
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "{name}_bucket{{mode=\"{mode}\",le=\"{bound}\"}} {}",
                    h.buckets[i].load(Ordering::Relaxed)
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(s, "{name}_bucket{{mode=\"{mode}\",le=\"+Inf\"}} {count}");
            #[allow(clippy::cast_precision_loss)] // a latency sum in seconds
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(s, "{name}_sum{{mode=\"{mode}\"}} {sum}");
            let _ = writeln!(s, "{name}_count{{mode=\"{mode}\"}} {count}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.session_opened();
        m.orders_exported(3);
        m.error(ErrorKind::Auth);
        m.request(Mode::Query, Duration::from_millis(7));
        let text = m.render();
        assert!(text.contains("obmen_sessions_total 1\n"), "{text}");
        assert!(text.contains("obmen_orders_exported_total 3\n"));
        assert!(text.contains("obmen_errors_total{kind=\"auth\"} 1\n"));
        assert!(text.contains(
            "obmen_exchange_request_duration_seconds_bucket{mode=\"query\",le=\"0.005\"} 0\n"
        ));
        assert!(text.contains(
            "obmen_exchange_request_duration_seconds_bucket{mode=\"query\",le=\"0.01\"} 1\n"
        ));
        assert!(text.contains("obmen_exchange_request_duration_seconds_count{mode=\"query\"} 1\n"));
    }
}
