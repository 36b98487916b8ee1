//! The parsers of what SLURM's commands print in the fixed formats of [`super`]: pure
//! functions, tested on output captured from SLURM 22.05.

use super::{JobState, JobStatus, PartitionRow, StartEstimate, SEP};

/// A parser could not read a line (see [`SlurmError::Parse`], which adds the command).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {line:?}")]
pub struct ParseError {
    /// The line in question.
    pub line: String,
    /// What was expected.
    pub reason: String,
}

impl ParseError {
    pub(super) fn new(line: &str, reason: &str) -> Self {
        ParseError {
            line: line.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// Reads `sbatch --parsable` output: `JOBID` or `JOBID;CLUSTER`.
pub fn parse_sbatch_parsable(stdout: &str) -> Result<String, ParseError> {
    let line = stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let id = line.split(';').next().unwrap_or("");
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id.to_owned())
    } else {
        Err(ParseError::new(line, "expected a job id"))
    }
}

/// Reads squeue output in our job format (one job per line, fields separated by 0x1F).
pub fn parse_jobs(stdout: &str) -> Result<Vec<JobStatus>, ParseError> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.splitn(11, SEP).collect();
            if f.len() != 11 {
                return Err(ParseError::new(line, "expected 11 fields"));
            }
            let node_count = f[5]
                .trim()
                .parse()
                .map_err(|_| ParseError::new(line, "node count is not a number"))?;
            let optional = |s: &str, none: &str| {
                let s = s.trim();
                (!s.is_empty() && s != none).then(|| s.to_owned())
            };
            Ok(JobStatus {
                id: f[0].trim().to_owned(),
                state: JobState::parse(f[1].trim()),
                partition: f[2].trim().to_owned(),
                name: f[3].to_owned(),
                user: f[4].trim().to_owned(),
                node_count,
                nodes: f[6].trim().to_owned(),
                elapsed: f[7].trim().to_owned(),
                time_limit: f[8].trim().to_owned(),
                reason: optional(f[9], "None"),
                comment: optional(f[10], "(null)"),
            })
        })
        .collect()
}

/// Reads `squeue --start` output in our start format.
pub fn parse_start_estimates(stdout: &str) -> Result<Vec<StartEstimate>, ParseError> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(SEP).collect();
            if f.len() != 3 {
                return Err(ParseError::new(line, "expected 3 fields"));
            }
            let known = |s: &str| {
                let s = s.trim();
                (!s.is_empty() && s != "N/A" && s != "(null)").then(|| s.to_owned())
            };
            Ok(StartEstimate {
                id: f[0].trim().to_owned(),
                start: known(f[1]),
                nodes: known(f[2]),
            })
        })
        .collect()
}

/// Reads sinfo output in our partition format. Lines of the same partition are added up.
pub fn parse_partitions(stdout: &str) -> Result<Vec<PartitionRow>, ParseError> {
    let mut rows: Vec<PartitionRow> = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(SEP).map(str::trim).collect();
        if f.len() != 4 {
            return Err(ParseError::new(line, "expected 4 fields"));
        }
        let counts: Vec<u32> = f[3]
            .split('/')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| ParseError::new(line, "expected node counts A/I/O/T"))?;
        let [allocated, idle, other, total] = counts[..] else {
            return Err(ParseError::new(line, "expected node counts A/I/O/T"));
        };
        let (name, is_default) = match f[0].strip_suffix('*') {
            Some(name) => (name, true),
            None => (f[0], false),
        };
        match rows.iter_mut().find(|r| r.name == name) {
            Some(row) => {
                row.nodes_allocated += allocated;
                row.nodes_idle += idle;
                row.nodes_other += other;
                row.nodes_total += total;
            }
            None => rows.push(PartitionRow {
                name: name.to_owned(),
                is_default,
                available: f[1].to_owned(),
                time_limit: f[2].to_owned(),
                nodes_allocated: allocated,
                nodes_idle: idle,
                nodes_other: other,
                nodes_total: total,
            }),
        }
    }
    Ok(rows)
}

/// How long a job in `state` with `elapsed` of `limit` (as squeue prints them) has before its
/// time limit: `None` unless it runs and has a limit.
pub fn time_left(state: &JobState, elapsed: &str, limit: &str) -> Option<std::time::Duration> {
    if *state != JobState::Running {
        return None;
    }
    Some(parse_slurm_duration(limit)?.saturating_sub(parse_slurm_duration(elapsed)?))
}

/// A SLURM duration as squeue prints elapsed times and limits (`5:03`, `1:02:03`,
/// `2-03:04:05`) or as a time limit is written (`30` minutes, `2-12`, `2-12:30`); `None` for
/// `UNLIMITED`, `INVALID`, `NOT_SET` and anything else.
pub fn parse_slurm_duration(text: &str) -> Option<std::time::Duration> {
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (days, rest) = match text.trim().split_once('-') {
        Some((d, rest)) => (Some(number(d)?), rest),
        None => (None, text.trim()),
    };
    let parts: Vec<u64> = rest.split(':').map(number).collect::<Option<_>>()?;
    let seconds = match (days, parts.as_slice()) {
        (None, [m]) => m * 60,
        (None, [m, s]) => m * 60 + s,
        (None, [h, m, s]) => h * 3600 + m * 60 + s,
        (Some(d), [h]) => d * 86400 + h * 3600,
        (Some(d), [h, m]) => d * 86400 + h * 3600 + m * 60,
        (Some(d), [h, m, s]) => d * 86400 + h * 3600 + m * 60 + s,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(seconds))
}

/// Splits one `scontrol -o show …` line into `(Key, Value)` pairs, in order. Values may contain
/// spaces (`Command=/path/job.sh arg`, `StdOut=/a b/x.out`): a word that does not start with
/// `Key=` continues the previous value.
pub fn parse_scontrol_record(line: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for word in line.trim_end().split(' ') {
        let key = word.split_once('=').map(|(k, _)| k).filter(|k| {
            !k.is_empty()
                && k.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ":/_".contains(c))
        });
        match (key, pairs.last_mut()) {
            (Some(k), _) => pairs.push((k.to_owned(), word[k.len() + 1..].to_owned())),
            (None, Some((_, value))) => {
                value.push(' ');
                value.push_str(word);
            }
            (None, None) => {}
        }
    }
    for (_, value) in &mut pairs {
        let trimmed = value.trim_end().len();
        value.truncate(trimmed);
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_durations() {
        let secs = |t: &str| parse_slurm_duration(t).map(|d| d.as_secs());
        assert_eq!(secs("0:05"), Some(5));
        assert_eq!(secs("5:03"), Some(303));
        assert_eq!(secs("1:02:03"), Some(3723));
        assert_eq!(secs("2-03:04:05"), Some(2 * 86400 + 3 * 3600 + 4 * 60 + 5));
        assert_eq!(secs("30"), Some(1800));
        assert_eq!(secs("2-12"), Some(2 * 86400 + 12 * 3600));
        for none in ["UNLIMITED", "INVALID", "NOT_SET", "", "1:2:3:4", "a:00"] {
            assert_eq!(secs(none), None, "{none}");
        }
    }
    use crate::model::JobRole;

    /// Lines captured from the lab's SLURM 22.05.8 (`<US>` stands for the 0x1F separator).
    fn captured(s: &str) -> String {
        s.replace("<US>", "\u{1f}")
    }

    const SQUEUE_CAPTURED: &str = "\
16<US>RUNNING<US>multiple<US>run1<US>root<US>2<US>n[1-2]<US>0:03<US>5:00<US>None<US>rust-cluster-kernel:user=root:cluster=demo:role=scheduler
19<US>CANCELLED<US>single<US>canc1<US>root<US>1<US><US>0:00<US>30:00<US>Priority<US>(null)
17<US>PENDING<US>single<US>pend1<US>root<US>1<US><US>0:00<US>10:00<US>Resources<US>(null)
18<US>FAILED<US>single<US>fail1<US>root<US>1<US>n1<US>0:00<US>30:00<US>NonZeroExitCode<US>(null)
20<US>RUNNING<US>single<US>name with|bar<US>root<US>1<US>n1<US>0:04<US>1:00:00<US>None<US>(null)
";

    #[test]
    fn parses_squeue_jobs() {
        let jobs = parse_jobs(&captured(SQUEUE_CAPTURED)).unwrap();
        assert_eq!(jobs.len(), 5);
        let run = &jobs[0];
        assert_eq!(run.id, "16");
        assert_eq!(run.state, JobState::Running);
        assert_eq!(
            (run.partition.as_str(), run.name.as_str()),
            ("multiple", "run1")
        );
        assert_eq!((run.node_count, run.nodes.as_str()), (2, "n[1-2]"));
        assert_eq!(
            (run.elapsed.as_str(), run.time_limit.as_str()),
            ("0:03", "5:00")
        );
        assert_eq!(run.reason, None);
        let tag = run.tag().unwrap();
        assert_eq!(
            (tag.user.as_str(), tag.cluster.as_deref()),
            ("root", Some("demo"))
        );
        assert_eq!(tag.role, JobRole::Scheduler);
        assert_eq!(jobs[1].state, JobState::Cancelled);
        assert!(jobs[1].state.is_finished());
        assert_eq!(jobs[1].comment, None);
        assert_eq!(jobs[2].state, JobState::Pending);
        assert_eq!(jobs[2].reason.as_deref(), Some("Resources"));
        assert_eq!(jobs[2].nodes, "");
        assert!(!jobs[2].state.is_finished());
        assert_eq!(jobs[3].state, JobState::Failed);
        assert_eq!(jobs[3].reason.as_deref(), Some("NonZeroExitCode"));
        assert_eq!(
            jobs[4].name, "name with|bar",
            "a `|` in a name does not split it"
        );
        assert_eq!(parse_jobs("").unwrap(), vec![]);
    }

    #[test]
    fn squeue_parse_errors_show_the_line() {
        let err = parse_jobs("16|RUNNING|multiple").unwrap_err();
        assert_eq!(err.line, "16|RUNNING|multiple");
        let bad_count =
            captured("1<US>RUNNING<US>p<US>n<US>u<US>x<US><US>0:00<US>1:00<US>None<US>(null)");
        assert!(parse_jobs(&bad_count)
            .unwrap_err()
            .reason
            .contains("node count"));
    }

    #[test]
    fn job_states() {
        for s in [
            "PENDING",
            "RUNNING",
            "COMPLETING",
            "COMPLETED",
            "CANCELLED",
            "FAILED",
            "TIMEOUT",
            "NODE_FAIL",
            "OUT_OF_MEMORY",
            "PREEMPTED",
            "SUSPENDED",
            "CONFIGURING",
            "BOOT_FAIL",
            "DEADLINE",
            "REQUEUED",
        ] {
            assert_eq!(JobState::parse(s).as_str(), s);
        }
        assert_eq!(
            JobState::parse("REQUEUED"),
            JobState::Other("REQUEUED".into())
        );
        assert!(!JobState::Completing.is_finished());
        assert!(JobState::Timeout.is_finished());
        assert!(JobState::Gone.is_finished());
        assert_eq!(JobStatus::gone("5").state.to_string(), "GONE");
        // What the manager writes reads back as the same state.
        for state in [JobState::Submitted, JobState::Gone, JobState::Running] {
            assert_eq!(JobState::parse(state.as_str()), state);
        }
    }

    #[test]
    fn parses_start_estimates() {
        let out = captured("17<US>N/A<US>(null)\n21<US>2026-11-24T18:39:17<US>n[1-2]\n");
        let est = parse_start_estimates(&out).unwrap();
        assert_eq!(
            est[0],
            StartEstimate {
                id: "17".into(),
                start: None,
                nodes: None
            }
        );
        assert_eq!(est[1].start.as_deref(), Some("2026-11-24T18:39:17"));
        assert_eq!(est[1].nodes.as_deref(), Some("n[1-2]"));
    }

    #[test]
    fn parses_sinfo_partitions() {
        let out = captured(
            "single*<US>up<US>3-00:00:00<US>1/1/0/2\nmultiple<US>up<US>3-00:00:00<US>1/1/0/2\n",
        );
        let rows = parse_partitions(&out).unwrap();
        assert_eq!(
            rows[0],
            PartitionRow {
                name: "single".into(),
                is_default: true,
                available: "up".into(),
                time_limit: "3-00:00:00".into(),
                nodes_allocated: 1,
                nodes_idle: 1,
                nodes_other: 0,
                nodes_total: 2,
            }
        );
        assert!(!rows[1].is_default);
        let split = captured("a<US>up<US>1:00<US>1/0/0/1\na<US>up<US>1:00<US>0/2/1/3\n");
        let rows = parse_partitions(&split).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].nodes_idle, rows[0].nodes_other, rows[0].nodes_total),
            (2, 1, 4)
        );
        assert!(parse_partitions(&captured("a<US>up<US>1:00<US>1/0/0\n")).is_err());
    }

    #[test]
    fn parses_scontrol_records() {
        let line = "JobId=16 JobName=run1 UserId=root(0) JobState=RUNNING Reason=None \
            NodeList=n[1-2] BatchHost=n1 NumNodes=2 CPUs/Task=1 ReqB:S:C:T=0:0:*:* \
            Command=/tmp/rck-slurm-exp/sleep.sh 120 WorkDir=/tmp/rck-slurm-exp \
            Comment=rust-cluster-kernel:user=root:cluster=demo:role=scheduler  \
            StdErr=/tmp/rck-slurm-exp/run1-16.out StdIn=/dev/null \
            StdOut=/tmp/rck-slurm-exp/a b/slurm-16.out Power= ";
        let rec = parse_scontrol_record(line);
        let get = |k: &str| {
            rec.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("JobId"), Some("16"));
        assert_eq!(get("Command"), Some("/tmp/rck-slurm-exp/sleep.sh 120"));
        assert_eq!(get("StdOut"), Some("/tmp/rck-slurm-exp/a b/slurm-16.out"));
        assert_eq!(
            get("Comment"),
            Some("rust-cluster-kernel:user=root:cluster=demo:role=scheduler")
        );
        assert_eq!(get("ReqB:S:C:T"), Some("0:0:*:*"));
        assert_eq!(get("CPUs/Task"), Some("1"));
        assert_eq!(get("Power"), Some(""));
    }

    #[test]
    fn parses_sbatch_output() {
        assert_eq!(parse_sbatch_parsable("42\n").unwrap(), "42");
        assert_eq!(parse_sbatch_parsable("42;lab\n").unwrap(), "42");
        assert!(parse_sbatch_parsable("").is_err());
        assert!(parse_sbatch_parsable("Submitted batch job 42").is_err());
    }
}
