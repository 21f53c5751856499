//! Running a reproduction's steps in several processes at once. libtorch's kernels on these
//! small networks use a second core poorly (the demo's worst-case encoder: 99 images/s with 2
//! threads, 80 with 1), so on a CPU two processes of one thread each get more done than one
//! process of two (issue 16). Each step is started once the steps it needs have finished, in plan order;
//! a step's output goes to its log file, whose last line is reported every minute, and the
//! first failure stops the others (they resume on the next run).
use super::grid::Scope;
use super::steps::TrialStep;
use crate::error::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How often the steps still running report their progress: the last line of each log (a step
/// off a terminal writes a progress line every 30 s).
const PROGRESS_EVERY: Duration = Duration::from_secs(60);

struct Running {
    step: TrialStep,
    child: Child,
    log: PathBuf,
    started: Instant,
}

/// Runs `plan`, at most `jobs` steps at once: `command(step)` is the process that runs `step`
/// alone, and `log(step)` the file that gets its output.
pub fn run_steps(
    plan: &[TrialStep],
    scope: Scope,
    jobs: usize,
    command: &dyn Fn(&TrialStep) -> Command,
    log: &dyn Fn(&TrialStep) -> PathBuf,
) -> Result<()> {
    crate::error::ensure_positive("jobs", jobs)?;
    let mut waiting: Vec<TrialStep> = plan.to_vec();
    let mut finished: Vec<TrialStep> = Vec::new();
    let mut running: Vec<Running> = Vec::new();
    let mut reported = Instant::now();
    loop {
        while running.len() < jobs {
            let ready = waiting.iter().position(|s| {
                s.needs(scope)
                    .iter()
                    .all(|need| finished.contains(need) || !plan.contains(need))
            });
            let Some(index) = ready else { break };
            let step = waiting.remove(index);
            let log = log(&step);
            match start(&step, command(&step), &log) {
                Ok(child) => running.push(Running {
                    step,
                    child,
                    log,
                    started: Instant::now(),
                }),
                Err(e) => return Err(stop(running, e)),
            }
        }
        if running.is_empty() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
        if reported.elapsed() >= PROGRESS_EVERY {
            for r in &running {
                eprintln!("{}: {}", r.step.name(), last_line(&r.log));
            }
            reported = Instant::now();
        }
        let mut index = 0;
        while index < running.len() {
            let status = match running[index].child.try_wait() {
                Ok(status) => status,
                Err(e) => {
                    let r = running.remove(index);
                    let e = Error::io(format!("cannot wait for step {}", r.step.name()), e);
                    return Err(stop(running, e));
                }
            };
            let Some(status) = status else {
                index += 1;
                continue;
            };
            let done = running.remove(index);
            if !status.success() {
                let e = Error::invalid(
                    "step",
                    format!(
                        "{} failed ({status}): {} (its log: {})",
                        done.step.name(),
                        last_line(&done.log),
                        done.log.display()
                    ),
                );
                return Err(stop(running, e));
            }
            eprintln!(
                "{}: done in {:.0} s",
                done.step.name(),
                done.started.elapsed().as_secs_f64()
            );
            finished.push(done.step);
        }
    }
}

fn start(step: &TrialStep, mut command: Command, log: &Path) -> Result<Child> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    }
    let file =
        File::create(log).map_err(|e| Error::io(format!("cannot create {}", log.display()), e))?;
    let copy = file
        .try_clone()
        .map_err(|e| Error::io(format!("cannot write {}", log.display()), e))?;
    eprintln!("{}: started (log: {})", step.name(), log.display());
    command
        .stdout(file)
        .stderr(copy)
        .spawn()
        .map_err(|e| Error::io(format!("cannot start step {}", step.name()), e))
}

/// Stops the steps still running (killed: they resume from their last epoch next time) and
/// passes `error` on.
fn stop(running: Vec<Running>, error: Error) -> Error {
    for mut r in running {
        // Already gone is fine: nothing is left to stop.
        let _ = r.child.kill();
        let _ = r.child.wait();
        eprintln!("{}: stopped", r.step.name());
    }
    error
}

/// The last non-empty line of a log: a running step's progress, a failed step's error.
fn last_line(log: &Path) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::super::steps::plan;
    use super::*;

    /// Each fake step appends its name to a shared file when it starts and again when it ends,
    /// so the file shows what overlapped.
    fn fake(trace: &Path, fail: Option<&str>) -> impl Fn(&TrialStep) -> Command {
        let trace = trace.to_path_buf();
        let fail = fail.map(str::to_string);
        move |step| {
            let name = step.name();
            let code = if fail.as_deref() == Some(name.as_str()) {
                "echo 'reading the encoder: no such file' >&2; exit 3"
            } else {
                "exit 0"
            };
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!(
                "echo start {name} >> {t}; sleep 0.3; echo end {name} >> {t}; {code}",
                t = trace.display()
            ));
            c
        }
    }

    #[test]
    fn steps_start_after_what_they_need_and_no_more_than_jobs_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("trace");
        let plan = plan(Scope::Headline, 1);
        let log = |s: &TrialStep| dir.path().join(format!("{}.log", s.step.name()));
        run_steps(&plan, Scope::Headline, 2, &fake(&trace, None), &log).unwrap();
        let events: Vec<String> = std::fs::read_to_string(&trace)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(events.len(), 2 * plan.len());
        let at = |event: String| events.iter().position(|e| *e == event).unwrap();
        let mut open = 0;
        let mut most = 0;
        for e in &events {
            open = if e.starts_with("start") {
                open + 1
            } else {
                open - 1
            };
            most = most.max(open);
        }
        assert_eq!(most, 2, "{events:?}");
        for step in &plan {
            for need in step.needs(Scope::Headline) {
                assert!(
                    at(format!("end {}", need.name())) < at(format!("start {}", step.name())),
                    "{events:?}"
                );
            }
        }
    }

    #[test]
    fn a_failed_step_stops_the_run_and_names_its_log_and_error() {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("trace");
        let plan = plan(Scope::Headline, 1);
        let log = |s: &TrialStep| dir.path().join(format!("{}.log", s.step.name()));
        let failing = "trial-0/encoder-dim";
        let err = run_steps(
            &plan,
            Scope::Headline,
            2,
            &fake(&trace, Some(failing)),
            &log,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("trial-0/encoder-dim failed")
                && err.contains("reading the encoder: no such file")
                && err.contains("encoder-dim.log"),
            "{err}"
        );
        let events = std::fs::read_to_string(&trace).unwrap();
        assert!(!events.contains("dim-mlp-adversarial"), "{events}");
        let err = run_steps(&plan, Scope::Headline, 0, &fake(&trace, None), &log).unwrap_err();
        assert!(err.to_string().starts_with("jobs:"), "{err}");
    }
}
