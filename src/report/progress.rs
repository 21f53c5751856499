//! Progress of long work on stderr: a bar on a terminal; elsewhere (a log file, CI, `nohup`)
//! a plain line at most every [`PLAIN_INTERVAL`], so that a long epoch or evaluation is never
//! silent.
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a plain progress line is printed off a terminal.
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(30);

/// Where a plain progress report stands.
#[derive(Debug)]
struct Plain {
    prefix: String,
    len: usize,
    pos: usize,
    message: String,
    started: Instant,
    last: Instant,
}

/// A progress report of `len` steps: a bar, or plain lines.
#[derive(Debug)]
pub struct Bar(Inner);

#[derive(Debug)]
enum Inner {
    Drawn(ProgressBar),
    Plain(Mutex<Plain>),
}

pub fn bar(len: usize, prefix: String) -> Bar {
    if !std::io::stderr().is_terminal() {
        let now = Instant::now();
        return Bar(Inner::Plain(Mutex::new(Plain {
            prefix,
            len,
            pos: 0,
            message: String::new(),
            started: now,
            last: now,
        })));
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    Bar(Inner::Drawn(bar))
}

impl Plain {
    /// The line for the current position: prefix, steps, share done, message, time left.
    fn line(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = elapsed * (self.len - self.pos.min(self.len)) as f64 / self.pos.max(1) as f64;
        let message = if self.message.is_empty() {
            String::new()
        } else {
            format!(", {}", self.message)
        };
        format!(
            "{}: {}/{} ({:.0} %){message}, {:.0} s elapsed, about {:.0} s left",
            self.prefix,
            self.pos,
            self.len,
            100.0 * self.pos as f64 / self.len.max(1) as f64,
            elapsed,
            left
        )
    }
}

impl Bar {
    fn plain(state: &Mutex<Plain>) -> std::sync::MutexGuard<'_, Plain> {
        state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn inc(&self, steps: usize) {
        match &self.0 {
            Inner::Drawn(bar) => bar.inc(steps as u64),
            Inner::Plain(state) => {
                let mut plain = Self::plain(state);
                plain.pos += steps;
                if plain.last.elapsed() >= PLAIN_INTERVAL && plain.pos < plain.len {
                    plain.last = Instant::now();
                    eprintln!("{}", plain.line());
                }
            }
        }
    }

    pub fn set_message(&self, message: String) {
        match &self.0 {
            Inner::Drawn(bar) => bar.set_message(message),
            Inner::Plain(state) => Self::plain(state).message = message,
        }
    }

    /// Ends the report (the caller prints its own summary line).
    pub fn finish_and_clear(&self) {
        if let Inner::Drawn(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }

    /// The plain line for the current position (what is printed off a terminal).
    pub fn plain_line(&self) -> Option<String> {
        match &self.0 {
            Inner::Drawn(_) => None,
            Inner::Plain(state) => Some(Self::plain(state).line()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_a_terminal_the_line_says_where_the_work_stands() {
        // Tests run with stderr captured, not on a terminal.
        let progress = bar(4, "epoch 2/10".to_string());
        progress.inc(1);
        progress.set_message("Î 3.210".to_string());
        let Some(line) = progress.plain_line() else {
            return; // run on a terminal: the bar draws itself
        };
        assert!(
            line.starts_with("epoch 2/10: 1/4 (25 %), Î 3.210, ") && line.ends_with(" s left"),
            "{line}"
        );
    }
}
