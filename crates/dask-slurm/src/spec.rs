//! A resolved, validated cluster specification ([`ClusterSpec`]) and the validators behind it.
//!
//! (Over 600 lines: the code is about 575 of them; the rest are the tests that feed every
//! validator hostile input.)
//!
//! Everything that ends up in a job script passes through here first. Values written into
//! `#SBATCH` lines (partition, account, time, memory, names) must match a strict character set;
//! values written into shell commands (paths, environment values, extra `mpirun` arguments) are
//! checked for control characters and later shell-quoted by [`crate::script`]. A hostile value
//! such as `$(rm -rf ~)` is a [`SpecError`] that names the field, never a command.
//!
//! Paths and environment values may refer to environment variables of the job as `$NAME` or
//! `${NAME}` (for example the workshop's node-local `$TMP/dask`); nothing else is expanded, and any
//! other use of `$` or a backquote is refused. See [`ShellText`].

use serde::{Deserialize, Serialize};

/// A value in a profile, an override or a cluster spec that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The value of `field` is not allowed; `reason` says what is expected.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        /// The profile key or option the value came from, e.g. `partition`.
        field: String,
        /// The offending value, exactly as given.
        value: String,
        /// What a valid value looks like.
        reason: String,
    },
    /// Two settings that exclude each other were both given.
    #[error("{first} and {second} cannot both be set: {reason}")]
    Conflict {
        /// The first setting.
        first: String,
        /// The second setting.
        second: String,
        /// Why they conflict.
        reason: String,
    },
}

impl SpecError {
    fn invalid(field: &str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError::Invalid {
            field: field.to_owned(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// The field (profile key or option) the error is about.
    pub fn field(&self) -> &str {
        match self {
            SpecError::Invalid { field, .. } => field,
            SpecError::Conflict { first, .. } => first,
        }
    }
}

/// How `mpirun` places the ranks: the value of `--map-by`, with `{threads}` standing for the
/// threads per worker.
///
/// The workshop's `core:PE={threads}` gives every worker `threads` cores of its own. It fails when
/// the machine has fewer real cores than the allocation claims (the test lab declares 4 CPUs per
/// emulated node on a 2-core machine), so a lab profile can choose another policy such as `slot`,
/// or the empty string for no `--map-by` at all (Open MPI's default placement).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MapBy(pub String);

impl MapBy {
    /// The workshop's policy: `core:PE={threads}`.
    pub fn core_pe() -> Self {
        MapBy("core:PE={threads}".to_owned())
    }

    /// The `--map-by` value for `threads` threads per worker, or `None` for no `--map-by`.
    pub fn value_for(&self, threads: u32) -> Option<String> {
        if self.0.is_empty() {
            None
        } else {
            Some(self.0.replace("{threads}", &threads.to_string()))
        }
    }

    /// Checks that the policy only uses Open MPI's mapping syntax (`[A-Za-z0-9:=,._-]` and the
    /// `{threads}` placeholder).
    pub fn validate(&self) -> Result<(), SpecError> {
        let bare = self.0.replace("{threads}", "");
        if bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":=,._-".contains(c))
        {
            Ok(())
        } else {
            Err(SpecError::invalid(
                "map_by",
                &self.0,
                "expected an Open MPI --map-by value such as `core:PE={threads}`, `slot`, `node`, \
                 or \"\" for none (letters, digits, `:=,._-` and the `{threads}` placeholder)",
            ))
        }
    }
}

/// Text that goes into a shell command of the job script, where `$NAME` and `${NAME}` refer to
/// environment variables of the job and everything else is literal.
///
/// [`ShellText::to_shell`] turns it into one shell word: literal parts in single quotes, variables
/// in double quotes, so no other expansion, globbing or word splitting can happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellText {
    parts: Vec<ShellPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ShellPart {
    Literal(String),
    Variable(String),
}

impl ShellText {
    /// Parses `value` for the field `field`. Refuses control characters (newlines included), a
    /// backquote, and any `$` that does not start a `$NAME` or `${NAME}` reference.
    pub fn parse(field: &str, value: &str) -> Result<ShellText, SpecError> {
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            return Err(SpecError::invalid(
                field,
                value,
                format!("control character {c:?} (newline, tab, …) is not allowed"),
            ));
        }
        if value.contains('`') {
            return Err(SpecError::invalid(
                field,
                value,
                "a backquote is not allowed (no command substitution)",
            ));
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = value;
        while let Some(pos) = rest.find('$') {
            literal.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => (&braced[..end], end + 2),
                    None => ("", 0),
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            };
            if !is_env_name(name) {
                return Err(SpecError::invalid(
                    field,
                    value,
                    "`$` may only start an environment variable reference `$NAME` or `${NAME}` \
                     (no `$(…)`, `$((…))` or other expansions)",
                ));
            }
            if !literal.is_empty() {
                parts.push(ShellPart::Literal(std::mem::take(&mut literal)));
            }
            parts.push(ShellPart::Variable(name.to_owned()));
            rest = &after[consumed..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(ShellPart::Literal(literal));
        }
        Ok(ShellText { parts })
    }

    /// One shell word that expands to the text: `'literal'` parts and `"${NAME}"` parts,
    /// concatenated. An empty text is `''`.
    pub fn to_shell(&self) -> String {
        if self.parts.is_empty() {
            return "''".to_owned();
        }
        self.parts
            .iter()
            .map(|p| match p {
                ShellPart::Literal(s) => single_quote(s),
                ShellPart::Variable(v) => format!("\"${{{v}}}\""),
            })
            .collect()
    }
}

/// `s` in single quotes, with embedded single quotes written as `'\''`.
pub(crate) fn single_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// True for a POSIX environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks a cluster name: `[A-Za-z0-9][A-Za-z0-9_-]{0,62}`. It becomes the job name, part of
/// the comment tag and the prefix of the Dask worker names.
pub fn validate_cluster_name(name: &str) -> Result<(), SpecError> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(SpecError::invalid(
            "cluster name",
            name,
            "expected 1 to 63 characters: letters, digits, `_` and `-`, starting with a letter or digit",
        ))
    }
}

/// Checks a SLURM partition or account name (`field` says which): `[A-Za-z0-9_.-]+`.
pub fn validate_slurm_name(field: &str, value: &str) -> Result<(), SpecError> {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        Ok(())
    } else {
        Err(SpecError::invalid(
            field,
            value,
            "expected letters, digits, `_`, `.` and `-` only",
        ))
    }
}

/// Checks the value of an `#SBATCH --field=VALUE` line that SLURM reads as an expression
/// (`--constraint=ib&[skylake|icelake]`, `--gres=gpu:a100:2`): letters, digits, `_`, `.`, `-`
/// and the operators in `operators`; no spaces, quotes, `$`, `#` or new lines, so the line is
/// one option and nothing else.
pub fn validate_directive_value(
    field: &str,
    value: &str,
    operators: &str,
) -> Result<(), SpecError> {
    if !value.is_empty()
        && value.len() <= 256
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c) || operators.contains(c))
    {
        Ok(())
    } else {
        Err(SpecError::invalid(
            field,
            value,
            format!("expected letters, digits, `_`, `.`, `-` and {operators} only"),
        ))
    }
}

/// The generated `#SBATCH` options that `skip_directives` may name. The job name, output file
/// and comment tag are the kernel's own: it finds its jobs and their logs by them.
pub const SKIPPABLE_DIRECTIVES: [&str; 16] = [
    "partition",
    "nodes",
    "ntasks",
    "ntasks-per-node",
    "cpus-per-task",
    "time",
    "mem",
    "mem-per-cpu",
    "account",
    "qos",
    "constraint",
    "reservation",
    "gres",
    "gpus-per-node",
    "exclusive",
    "signal",
];

/// Options that `extra_directives` may not set: the kernel finds its jobs and their logs by
/// them.
const OWN_DIRECTIVES: [&str; 5] = ["job-name", "output", "error", "comment", "parsable"];

/// Checks one of `extra_directives`: `--name` or `--name=value`, with a lower-case name and a
/// value of letters, digits and `_.,:@%+/=&|*[]()!-` only (no spaces, quotes, `$` or new
/// lines: one option and nothing else), and not an option the kernel sets for its own use.
pub fn validate_extra_directive(directive: &str) -> Result<(), SpecError> {
    let invalid = |why: &str| SpecError::invalid("extra_directives", directive, why.to_owned());
    let option = directive
        .strip_prefix("--")
        .ok_or_else(|| invalid("expected --name or --name=value"))?;
    let (name, value) = match option.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (option, None),
    };
    let name_ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let value_ok = value.is_none_or(|v| {
        !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.,:@%+/=&|*[]()!-".contains(c))
    });
    if !name_ok || !value_ok || directive.len() > 256 {
        return Err(invalid(
            "expected --name or --name=value: a lower-case name, and a value of letters, digits \
             and _.,:@%+/=&|*[]()!- only",
        ));
    }
    if OWN_DIRECTIVES.contains(&name) {
        return Err(invalid(
            "the kernel sets this option itself: it finds its jobs and their logs by it",
        ));
    }
    Ok(())
}

/// Checks a dotted Python name (`distributed.Worker`, `dask_cuda.CUDAWorker`).
pub fn validate_python_name(field: &str, value: &str) -> Result<(), SpecError> {
    let part_ok = |p: &str| {
        p.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if value.len() <= 128 && value.contains('.') && value.split('.').all(part_ok) {
        Ok(())
    } else {
        Err(SpecError::invalid(
            field,
            value,
            "expected a dotted Python name such as distributed.Worker",
        ))
    }
}

/// Checks a Dask duration (`55m`, `1h`, `3600s`, `90`): a number and an optional unit.
pub fn validate_dask_duration(field: &str, value: &str) -> Result<(), SpecError> {
    let number_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(number_end);
    let number_ok = number
        .parse::<f64>()
        .is_ok_and(|n| n.is_finite() && n >= 0.0);
    let unit_ok = matches!(unit, "" | "ms" | "s" | "m" | "h" | "d");
    if number_ok && unit_ok && value.len() <= 16 {
        Ok(())
    } else {
        Err(SpecError::invalid(
            field,
            value,
            "expected a number with an optional unit ms, s, m, h or d (55m, 1h)",
        ))
    }
}

/// The line that ends the prologue's here-document in a job script (see `script`); no prologue
/// line may be it.
pub const PROLOGUE_END: &str = "RCK_PROLOGUE_END";

/// Checks one line of a profile's `prologue`: shell as the user wrote it (it is their own
/// set-up, run as them), but one line: no new line, carriage return or NUL that would make it
/// several, not empty, and not the end marker of its here-document ([`PROLOGUE_END`]).
pub fn validate_prologue_line(line: &str) -> Result<(), SpecError> {
    if !line.trim().is_empty()
        && !line.contains(['\n', '\r', '\0'])
        && line.len() <= 1024
        && line.trim() != PROLOGUE_END
    {
        Ok(())
    } else {
        Err(SpecError::invalid(
            "prologue",
            line,
            "expected one non-empty line of shell per entry",
        ))
    }
}

/// Checks a user name as it goes into the job's comment tag: `[A-Za-z0-9_.-]+`.
pub fn validate_user_name(value: &str) -> Result<(), SpecError> {
    validate_slurm_name("user name", value)
}

/// Checks a SLURM time limit: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM` or `D-HH:MM:SS`
/// (digits only in each part; SLURM accepts any number of digits per part).
pub fn validate_time(value: &str) -> Result<(), SpecError> {
    let digits = |s: &str| !s.is_empty() && s.len() <= 6 && s.chars().all(|c| c.is_ascii_digit());
    let (days, clock) = match value.split_once('-') {
        Some((d, rest)) => (Some(d), rest),
        None => (None, value),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let shape_ok = match days {
        None => (1..=3).contains(&parts.len()),
        Some(d) => digits(d) && (1..=3).contains(&parts.len()),
    };
    if shape_ok && parts.iter().all(|p| digits(p)) {
        Ok(())
    } else {
        Err(SpecError::invalid(
            "time",
            value,
            "expected a SLURM time limit: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS",
        ))
    }
}

/// Checks a SLURM memory size for `--mem`: whole number with an optional unit `K`, `M`, `G` or
/// `T`, optionally followed by `B`, in any case (`90000`, `90000mb`, `90G`). SLURM's default unit
/// is megabytes; it refuses fractions (`1.5G`).
pub fn validate_slurm_memory(field: &str, value: &str) -> Result<(), SpecError> {
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(digits_end);
    let unit_ok = matches!(
        unit.to_ascii_uppercase().as_str(),
        "" | "K" | "M" | "G" | "T" | "KB" | "MB" | "GB" | "TB"
    );
    if !number.is_empty() && number.len() <= 12 && unit_ok {
        Ok(())
    } else {
        Err(SpecError::invalid(
            field,
            value,
            "expected a whole number with an optional unit K, M, G or T (e.g. 90000, 90000mb, 90G)",
        ))
    }
}

/// A SLURM memory size (already checked by [`validate_slurm_memory`]) in bytes: SLURM's units
/// are binary and its default unit is the megabyte (`500M` and `500` are 500 MiB).
pub fn slurm_memory_bytes(value: &str) -> Option<u64> {
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    if digits_end == 0 {
        return None;
    }
    let (number, unit) = value.split_at(digits_end);
    let shift = match unit.to_ascii_uppercase().trim_end_matches('B') {
        "" if unit.is_empty() => 20,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// A Dask worker memory limit in bytes, when it is an absolute size (`4GiB`, `4GB`, `1e9`,
/// bytes); `None` for `auto` and a fraction of the node's memory, which only Dask can resolve.
pub fn worker_memory_bytes(value: &str) -> Option<u64> {
    let compact: String = value.chars().filter(|c| *c != ' ').collect();
    let number_end = compact
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E'))
        .unwrap_or(compact.len());
    let (number, unit) = compact.split_at(number_end);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match unit.to_ascii_lowercase().as_str() {
        "" if number <= 1.0 => return None,
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number * factor) as u64)
}

/// The share of a node's job memory that its workers may use together when the limit is
/// derived: the rest is for MPI, the job's shell and Python outside Dask's accounting.
pub const DERIVED_MEMORY_SHARE: f64 = 0.9;

/// Checks a Dask worker memory limit for `--memory-limit`: `auto`, a number of bytes, a fraction
/// of the node's memory (`0.5`), or a number with a unit (`4GiB`, `4 GB`, `1e9`).
pub fn validate_worker_memory(value: &str) -> Result<(), SpecError> {
    let compact: String = value.chars().filter(|c| *c != ' ').collect();
    let number_end = compact
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E'))
        .unwrap_or(compact.len());
    let (number, unit) = compact.split_at(number_end);
    let number_ok = number
        .parse::<f64>()
        .is_ok_and(|n| n.is_finite() && n >= 0.0);
    let unit_ok = matches!(
        unit.to_ascii_lowercase().as_str(),
        "" | "b"
            | "k"
            | "kb"
            | "kib"
            | "m"
            | "mb"
            | "mib"
            | "g"
            | "gb"
            | "gib"
            | "t"
            | "tb"
            | "tib"
    );
    if value == "auto" || (number_ok && unit_ok && value.len() <= 32) {
        Ok(())
    } else {
        Err(SpecError::invalid(
            "memory_limit",
            value,
            "expected `auto`, a fraction (0.5), bytes, or a size with a unit (4GiB, 4GB)",
        ))
    }
}

/// Checks a network interface name for `--interface`: 1 to 15 characters of `[A-Za-z0-9_.:-]`.
pub fn validate_interface(value: &str) -> Result<(), SpecError> {
    if !value.is_empty()
        && value.len() <= 15
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
    {
        Ok(())
    } else {
        Err(SpecError::invalid(
            "interface",
            value,
            "expected a network interface name such as ib0, eth0 or lo",
        ))
    }
}

/// Checks a host name for the ssh tunnel line: `[A-Za-z0-9.-]+`, optionally `user@` before it.
pub fn validate_login_host(value: &str) -> Result<(), SpecError> {
    let host = value.rsplit_once('@').map_or(value, |(user, host)| {
        if validate_user_name(user).is_ok() {
            host
        } else {
            ""
        }
    });
    if !host.is_empty()
        && !host.starts_with('-')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
    {
        Ok(())
    } else {
        Err(SpecError::invalid(
            "login_host",
            value,
            "expected a host name such as uc2.scc.kit.edu (optionally user@host)",
        ))
    }
}

/// Checks a path that is written into an `#SBATCH` line (the log directory): absolute, and none
/// of `"`, `'`, `\`, `%`, `$`, `` ` `` or control characters. Spaces are allowed (the line is
/// quoted).
pub fn validate_sbatch_path(field: &str, value: &str) -> Result<(), SpecError> {
    if !value.starts_with('/') {
        return Err(SpecError::invalid(
            field,
            value,
            "expected an absolute path (SLURM does not expand `~` or variables here)",
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() || "\"'\\%$`".contains(*c))
    {
        return Err(SpecError::invalid(
            field,
            value,
            format!("the character {c:?} is not allowed in a path SLURM reads"),
        ));
    }
    Ok(())
}

/// Checks one extra `mpirun` argument: no control characters, no `$` or backquote (it is quoted
/// in the script, so it can never run a command; this keeps surprises out of the log too).
pub fn validate_mpirun_arg(value: &str) -> Result<(), SpecError> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_control() || c == '`' || c == '$')
    {
        Err(SpecError::invalid(
            "mpirun_args",
            value,
            "expected a non-empty argument without control characters, `$` or backquotes",
        ))
    } else {
        Ok(())
    }
}

/// A count that must be at least 1 (`nodes`, `workers_per_node`, `threads_per_worker`).
pub fn validate_count(field: &str, value: u32) -> Result<(), SpecError> {
    if value >= 1 {
        Ok(())
    } else {
        Err(SpecError::invalid(
            field,
            value.to_string(),
            "must be at least 1",
        ))
    }
}

/// The Python environment that has `dask-mpi`, as the job script makes it available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "path")]
pub enum PythonEnv {
    /// Use whatever `dask-mpi` the job inherits on `PATH` (from the submitting shell).
    Inherit,
    /// Activate a venv or conda environment directory (`bin/activate` if it has one, otherwise
    /// `bin` is put first on `PATH`).
    Activate(String),
    /// Unpack a packed environment (`conda-pack`/`venv-pack` tarball) to node-local `$TMP` with
    /// one `srun` task per node, then activate it there.
    Staged(String),
}

/// How a cluster's Dask processes talk to each other and to clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Mutual TLS with the cluster's own CA (`--protocol tls`, encryption required): only
    /// holders of a certificate of that CA can connect. The default.
    #[default]
    Tls,
    /// Plain TCP: anyone who can reach the scheduler's port can run code as the user. Only on
    /// request (`security = "none"`, `--insecure`).
    None,
}

impl Security {
    /// The profile value: `tls` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Tls => "tls",
            Security::None => "none",
        }
    }

    /// Parses a profile value (`tls` or `none`); anything else is an error naming `security`.
    pub fn parse(value: &str) -> Result<Security, SpecError> {
        match value {
            "tls" => Ok(Security::Tls),
            "none" => Ok(Security::None),
            _ => Err(SpecError::invalid(
                "security",
                value,
                "expected \"tls\" (mutual TLS, the default) or \"none\" (plain TCP: anyone on \
                 the network can run code as you)",
            )),
        }
    }

    /// A registry record written before clusters had this setting ran plain TCP.
    pub(crate) fn of_old_record() -> Security {
        Security::None
    }
}

/// Where a new cluster runs: in a batch job of its own, or in the SLURM job the kernel runs in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// A batch job of its own (`sbatch`), which may wait in the queue. The default.
    #[default]
    Batch,
    /// Job steps of the job the kernel runs in (JupyterHub, Open OnDemand): no second queue
    /// wait, the nodes and walltime of the notebook's job.
    Allocation,
    /// The allocation when the kernel runs inside a job that has room for a worker, else a
    /// batch job.
    Auto,
}

impl Placement {
    /// The profile value: `batch`, `allocation` or `auto`.
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Batch => "batch",
            Placement::Allocation => "allocation",
            Placement::Auto => "auto",
        }
    }

    /// Parses a profile value; anything else is an error naming `placement`.
    pub fn parse(value: &str) -> Result<Placement, SpecError> {
        match value {
            "batch" => Ok(Placement::Batch),
            "allocation" => Ok(Placement::Allocation),
            "auto" => Ok(Placement::Auto),
            _ => Err(SpecError::invalid(
                "placement",
                value,
                "expected \"batch\" (a job of its own), \"allocation\" (steps of the job the \
                 kernel runs in) or \"auto\" (the allocation when it has room, else batch)",
            )),
        }
    }
}

/// CPUs of the kernel's node kept for the notebook by default (an in-allocation cluster's).
pub(crate) fn default_notebook_cores() -> u32 {
    2
}

/// Memory of the kernel's node kept for the notebook by default (an in-allocation cluster's).
pub(crate) fn default_notebook_mem() -> String {
    "4G".to_owned()
}

/// Seconds before its time limit at which a grow job is told to drain, by default: time for a
/// few hundred results to move to the other workers, and SLURM's own minute of slack.
pub const DEFAULT_DRAIN_MARGIN_SECS: u32 = 300;

/// The smallest drain margin (other than 0, off): Python has to start, connect and retire.
pub const MIN_DRAIN_MARGIN_SECS: u32 = 30;

/// The largest drain margin SLURM's `--signal=…@SECONDS` takes.
pub const MAX_DRAIN_MARGIN_SECS: u32 = 65535;

/// The drain margin of a new profile, and of a cluster recorded before the setting existed.
pub(crate) fn default_drain_margin() -> u32 {
    DEFAULT_DRAIN_MARGIN_SECS
}

/// The minimum polling interval in seconds: SLURM's controller is shared by every user.
pub const MIN_POLL_INTERVAL_SECS: u32 = 5;

pub use crate::settings::ClusterSpec;

impl ClusterSpec {
    /// The profile that resolves to this spec again: what a grow job starts from, so that it
    /// takes every setting of its cluster as the cluster was started, changed only by the
    /// grow's own flags (not the profile's values where the cluster's `up` overrode them).
    pub fn as_profile(&self) -> crate::profile::Profile {
        let mut profile = self.settings_as_profile();
        match &self.python_env {
            PythonEnv::Activate(dir) => profile.python_env = Some(dir.clone()),
            PythonEnv::Staged(archive) => profile.env_archive = Some(archive.clone()),
            PythonEnv::Inherit => {}
        }
        profile.log_dir = Some(self.log_dir.display().to_string());
        profile
    }

    /// The `--memory-limit` of each worker: `memory_limit` when set; otherwise
    /// [`DERIVED_MEMORY_SHARE`] of the memory SLURM gives each rank (in whole MiB), so that Dask
    /// spills and pauses before SLURM's limit kills a worker (Dask's own `auto` reads the node's
    /// memory, not the job's); otherwise none (`auto`). The scheduler's rank on the first node
    /// takes a worker's share, which is its margin.
    pub fn worker_memory_limit(&self) -> Option<String> {
        if let Some(limit) = &self.memory_limit {
            return Some(limit.clone());
        }
        let per_worker = (self.rank_memory()? as f64 * DERIVED_MEMORY_SHARE) as u64;
        Some(format!("{}MiB", per_worker >> 20))
    }

    /// The memory SLURM gives each rank, in bytes: `mem` per node divided among the node's
    /// ranks, or `mem_per_cpu` times a rank's CPUs (its threads); `None` when the job asks for
    /// neither (or `skip_directives` leaves the line out: then the site decides).
    fn rank_memory(&self) -> Option<u64> {
        let asked = |option: &str, value: &Option<String>| {
            value
                .as_deref()
                .filter(|_| !self.skip_directives.iter().any(|d| d == option))
                .and_then(slurm_memory_bytes)
        };
        if let Some(node) = asked("mem", &self.mem) {
            return Some(node / u64::from(self.workers_per_node.max(1)));
        }
        asked("mem-per-cpu", &self.mem_per_cpu)
            .map(|per_cpu| per_cpu.saturating_mul(u64::from(self.threads_per_worker)))
    }

    /// Refuses a worker `limit` above the memory SLURM gives each rank: SLURM would kill the
    /// workers before Dask spilled.
    fn check_limit_fits_the_job(&self, limit: &str) -> Result<(), SpecError> {
        let (Some(limit_bytes), Some(rank)) = (worker_memory_bytes(limit), self.rank_memory())
        else {
            return Ok(());
        };
        if limit_bytes > rank {
            return Err(SpecError::invalid(
                "memory_limit",
                limit,
                format!(
                    "each worker gets {} MiB from the job (mem or mem_per_cpu): SLURM would kill \
                     it before Dask spills; lower memory_limit, ask for more memory, or leave \
                     memory_limit out to have it derived",
                    rank >> 20
                ),
            ));
        }
        Ok(())
    }

    /// Checks every field; the first problem is returned, naming its field.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_cluster_name(&self.name)?;
        validate_slurm_name("partition", &self.partition)?;
        if let Some(account) = &self.account {
            validate_slurm_name("account", account)?;
        }
        for line in &self.prologue {
            validate_prologue_line(line)?;
        }
        validate_python_name("worker_class", &self.worker_class)?;
        for (name, amount) in &self.worker_resources {
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || !amount.is_finite()
                || *amount < 0.0
            {
                return Err(SpecError::invalid(
                    "worker_resources",
                    format!("{name} = {amount}"),
                    "expected NAME = amount: a name of letters, digits and `_`, an amount of 0 or more",
                ));
            }
        }
        for (field, value) in [
            ("lifetime", &self.lifetime),
            ("lifetime_stagger", &self.lifetime_stagger),
        ] {
            if let Some(value) = value {
                validate_dask_duration(field, value)?;
            }
        }
        if self.drain_margin != 0
            && !(MIN_DRAIN_MARGIN_SECS..=MAX_DRAIN_MARGIN_SECS).contains(&self.drain_margin)
        {
            return Err(SpecError::invalid(
                "drain_margin",
                self.drain_margin.to_string(),
                format!(
                    "expected 0 (no drain) or {MIN_DRAIN_MARGIN_SECS} to \
                     {MAX_DRAIN_MARGIN_SECS} seconds before the time limit"
                ),
            ));
        }
        for directive in &self.extra_directives {
            validate_extra_directive(directive)?;
        }
        for name in &self.skip_directives {
            if !SKIPPABLE_DIRECTIVES.contains(&name.as_str()) {
                return Err(SpecError::invalid(
                    "skip_directives",
                    name,
                    format!("expected one of {}", SKIPPABLE_DIRECTIVES.join(", ")),
                ));
            }
        }
        if let Some(qos) = &self.qos {
            validate_slurm_name("qos", qos)?;
        }
        if let Some(reservation) = &self.reservation {
            validate_slurm_name("reservation", reservation)?;
        }
        if let Some(constraint) = &self.constraint {
            validate_directive_value("constraint", constraint, "&|*[]()!,:")?;
        }
        if let Some(gres) = &self.gres {
            validate_directive_value("gres", gres, ":,")?;
        }
        if let Some(gpus) = &self.gpus_per_node {
            validate_directive_value("gpus_per_node", gpus, ":,")?;
        }
        validate_count("nodes", self.nodes)?;
        validate_count("workers_per_node", self.workers_per_node)?;
        validate_count("threads_per_worker", self.threads_per_worker)?;
        validate_time(&self.time)?;
        if let Some(mem) = &self.mem {
            validate_slurm_memory("mem", mem)?;
        }
        if let Some(per_cpu) = &self.mem_per_cpu {
            validate_slurm_memory("mem_per_cpu", per_cpu)?;
            if self.mem.is_some() {
                return Err(SpecError::Conflict {
                    first: "mem".to_owned(),
                    second: "mem_per_cpu".to_owned(),
                    reason: "SLURM takes memory per node or per CPU, not both".to_owned(),
                });
            }
        }
        if let Some(limit) = &self.memory_limit {
            validate_worker_memory(limit)?;
            self.check_limit_fits_the_job(limit)?;
        }
        validate_slurm_memory("notebook_mem", &self.notebook_mem)?;
        validate_interface(&self.interface)?;
        ShellText::parse("local_directory", &self.local_directory)?;
        match &self.python_env {
            PythonEnv::Inherit => {}
            PythonEnv::Activate(dir) => {
                ShellText::parse("python_env", dir)?;
            }
            PythonEnv::Staged(archive) => {
                ShellText::parse("env_archive", archive)?;
            }
        }
        if let Some(host) = &self.login_host {
            validate_login_host(host)?;
        }
        for (name, value) in &self.env {
            if !is_env_name(name) {
                return Err(SpecError::invalid(
                    "env",
                    name,
                    "expected an environment variable name [A-Za-z_][A-Za-z0-9_]*",
                ));
            }
            ShellText::parse(&format!("env.{name}"), value)?;
        }
        for arg in &self.mpirun_args {
            validate_mpirun_arg(arg)?;
        }
        self.map_by.validate()?;
        if !(self.watchdog_minutes.is_finite() && self.watchdog_minutes >= 0.0) {
            return Err(SpecError::invalid(
                "watchdog_minutes",
                self.watchdog_minutes.to_string(),
                "expected a number of minutes >= 0 (0 turns the watchdog off)",
            ));
        }
        if self.poll_interval_secs < MIN_POLL_INTERVAL_SECS {
            return Err(SpecError::invalid(
                "poll_interval_secs",
                self.poll_interval_secs.to_string(),
                format!("must be at least {MIN_POLL_INTERVAL_SECS} seconds"),
            ));
        }
        validate_sbatch_path("log_dir", &self.log_dir.to_string_lossy())?;
        Ok(())
    }

    /// MPI ranks per job: `nodes × workers_per_node`.
    pub fn ntasks(&self) -> u32 {
        self.nodes.saturating_mul(self.workers_per_node)
    }

    /// Dask workers an `up` job brings: every rank but the scheduler's (rank 0).
    pub fn workers_in_up_job(&self) -> u32 {
        self.ntasks().saturating_sub(1)
    }

    /// Dask workers a `grow` job brings: every rank.
    pub fn workers_in_grow_job(&self) -> u32 {
        self.ntasks()
    }

    /// Seconds before a grow job's time limit at which it drains, or `None` if it does not.
    pub fn drain_margin_secs(&self) -> Option<u32> {
        (self.drain_margin > 0).then_some(self.drain_margin)
    }

    /// Checks that a grow job's drain comes before its end: the margin is shorter than the time
    /// limit (a margin as long would drain the job as soon as it starts). A limit the job does
    /// not ask for (`time` in `skip_directives`) is the site's and cannot be checked.
    pub fn check_drain_fits_the_time(&self) -> Result<(), SpecError> {
        let Some(margin) = self.drain_margin_secs() else {
            return Ok(());
        };
        if self.skip_directives.iter().any(|d| d == "time") {
            return Ok(());
        }
        match crate::slurm::parse_slurm_duration(&self.time) {
            Some(limit) if u64::from(margin) >= limit.as_secs() => Err(SpecError::invalid(
                "drain_margin",
                margin.to_string(),
                format!(
                    "the drain would start as soon as the job does: its time limit {} is {} s; \
                     lower drain_margin, or set it to 0 for no drain",
                    self.time,
                    limit.as_secs()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The watchdog timeout in whole seconds, or `None` if the watchdog is off.
    pub fn watchdog_secs(&self) -> Option<u64> {
        (self.watchdog_minutes > 0.0)
            .then(|| ((self.watchdog_minutes * 60.0).round() as u64).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_directives_are_one_option_each() {
        let mut spec = crate::profile::Profile::workshop()
            .resolve("c", &Default::default(), std::path::Path::new("/tmp"))
            .unwrap();
        spec.qos = Some("normal".into());
        spec.reservation = Some("workshop-2026".into());
        spec.constraint = Some("ib&[skylake|icelake]".into());
        spec.gres = Some("gpu:a100:2".into());
        spec.gpus_per_node = Some("a100:2".into());
        spec.exclusive = true;
        spec.extra_directives = vec!["--signal=B:USR1@300".into(), "--mem-per-cpu=2000".into()];
        spec.skip_directives = vec!["mem".into()];
        assert!(spec.validate().is_ok());
        for (field, bad) in [
            ("constraint", "ib\n#SBATCH --exclusive"),
            ("constraint", "a b"),
            ("constraint", "$(id)"),
            ("gres", "gpu:2;id"),
            ("gres", "gpu:2 --wrap=id"),
            ("gpus_per_node", "2\n#SBATCH --wrap=id"),
            ("qos", "normal&x"),
            ("reservation", "r'x"),
            ("prologue", "module load x\nid"),
            ("extra_directives", "--mem-per-cpu=2000 --wrap=id"),
            ("extra_directives", "mem-per-cpu=2000"),
            ("extra_directives", "--signal='B:USR1@60'"),
            ("extra_directives", "--output=/tmp/elsewhere"),
            ("extra_directives", "--x=$(id)"),
            ("skip_directives", "job-name"),
            ("worker_class", "os.system('id')"),
            ("worker_class", "Worker"),
            ("lifetime", "55 minutes; id"),
            ("prologue", " "),
        ] {
            let mut s = spec.clone();
            match field {
                "constraint" => s.constraint = Some(bad.into()),
                "gres" => s.gres = Some(bad.into()),
                "gpus_per_node" => s.gpus_per_node = Some(bad.into()),
                "qos" => s.qos = Some(bad.into()),
                "prologue" => s.prologue = vec![bad.into()],
                "extra_directives" => s.extra_directives = vec![bad.into()],
                "skip_directives" => s.skip_directives = vec![bad.into()],
                "worker_class" => s.worker_class = bad.into(),
                "lifetime" => s.lifetime = Some(bad.into()),
                _ => s.reservation = Some(bad.into()),
            }
            let e = s.validate().unwrap_err();
            assert_eq!(e.field(), field, "{bad:?}");
        }
    }

    #[test]
    fn the_drain_margin_is_off_or_within_slurms_range() {
        let mut spec = crate::profile::Profile::workshop()
            .resolve("c", &Default::default(), std::path::Path::new("/tmp"))
            .unwrap();
        assert_eq!(spec.drain_margin_secs(), Some(DEFAULT_DRAIN_MARGIN_SECS));
        for ok in [0, MIN_DRAIN_MARGIN_SECS, 600, MAX_DRAIN_MARGIN_SECS] {
            spec.drain_margin = ok;
            assert!(spec.validate().is_ok(), "{ok}");
        }
        assert_eq!(spec.drain_margin_secs(), Some(MAX_DRAIN_MARGIN_SECS));
        for bad in [1, MIN_DRAIN_MARGIN_SECS - 1, MAX_DRAIN_MARGIN_SECS + 1] {
            spec.drain_margin = bad;
            assert_eq!(
                spec.validate().unwrap_err().field(),
                "drain_margin",
                "{bad}"
            );
        }
        // Below the time limit (30:00 = 1800 s), unless the site sets the limit.
        spec.drain_margin = 1800;
        assert_eq!(
            spec.check_drain_fits_the_time().unwrap_err().field(),
            "drain_margin"
        );
        spec.drain_margin = 1799;
        assert!(spec.check_drain_fits_the_time().is_ok());
        spec.drain_margin = 0;
        spec.time = "1".into();
        assert_eq!(spec.drain_margin_secs(), None);
        assert!(spec.check_drain_fits_the_time().is_ok());
        // A record written before the setting existed drains with the default.
        let mut json = serde_json::to_value(&spec).unwrap();
        json.as_object_mut().unwrap().remove("drain_margin");
        let old: ClusterSpec = serde_json::from_value(json).unwrap();
        assert_eq!(old.drain_margin, DEFAULT_DRAIN_MARGIN_SECS);
    }

    #[test]
    fn sizes_in_slurm_and_dask_units() {
        assert_eq!(slurm_memory_bytes("500"), Some(500 << 20));
        assert_eq!(slurm_memory_bytes("500M"), Some(500 << 20));
        assert_eq!(slurm_memory_bytes("90000mb"), Some(90000 << 20));
        assert_eq!(slurm_memory_bytes("2G"), Some(2 << 30));
        assert_eq!(slurm_memory_bytes("x"), None);
        assert_eq!(worker_memory_bytes("1GiB"), Some(1 << 30));
        assert_eq!(worker_memory_bytes("4 GB"), Some(4_000_000_000));
        assert_eq!(worker_memory_bytes("1e9"), Some(1_000_000_000));
        assert_eq!(worker_memory_bytes("auto"), None);
        assert_eq!(
            worker_memory_bytes("0.5"),
            None,
            "a fraction of the node's memory"
        );
    }

    #[test]
    fn the_worker_limit_is_derived_from_the_jobs_memory_and_checked_against_it() {
        let mut spec = crate::profile::Profile::workshop()
            .resolve("c", &Default::default(), std::path::Path::new("/tmp"))
            .unwrap();
        // 90000 MiB per node, 2 ranks: 0.9 x 90000 / 2.
        assert_eq!(spec.worker_memory_limit().as_deref(), Some("40500MiB"));
        spec.workers_per_node = 4;
        assert_eq!(spec.worker_memory_limit().as_deref(), Some("20250MiB"));
        spec.mem = None;
        assert_eq!(
            spec.worker_memory_limit(),
            None,
            "no job memory: Dask's auto"
        );
        spec.mem = Some("2400M".into());
        spec.memory_limit = Some("500MiB".into());
        assert_eq!(
            spec.worker_memory_limit().as_deref(),
            Some("500MiB"),
            "given, kept"
        );
        assert!(spec.validate().is_ok());
        spec.memory_limit = Some("1GiB".into());
        let e = spec.validate().unwrap_err();
        assert_eq!(e.field(), "memory_limit");
        assert!(e.to_string().contains("each worker gets 600 MiB"), "{e}");
        spec.memory_limit = Some("0.2".into());
        assert!(spec.validate().is_ok(), "a fraction is Dask's to resolve");
        spec.memory_limit = None;
        spec.skip_directives = vec!["mem".into()];
        assert_eq!(
            spec.worker_memory_limit(),
            None,
            "mem is not asked for: Dask's auto"
        );
        // Memory per CPU: a worker's share is its threads' (4 here): 0.9 x 300 MiB x 4.
        spec.skip_directives.clear();
        spec.mem = None;
        spec.mem_per_cpu = Some("300M".into());
        spec.threads_per_worker = 4;
        assert_eq!(spec.worker_memory_limit().as_deref(), Some("1080MiB"));
        spec.memory_limit = Some("2GiB".into());
        assert_eq!(spec.validate().unwrap_err().field(), "memory_limit");
        spec.memory_limit = None;
        spec.mem = Some("2400M".into());
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not both"));
    }

    fn field_of(e: SpecError) -> String {
        e.field().to_owned()
    }

    #[test]
    fn cluster_names() {
        for ok in ["a", "lab", "my-cluster_2", "0x", &"a".repeat(63)] {
            validate_cluster_name(ok).unwrap();
        }
        for bad in [
            "",
            "-a",
            "_a",
            "a b",
            "a;b",
            "a/b",
            "ä",
            &"a".repeat(64),
            "$(x)",
        ] {
            assert_eq!(
                field_of(validate_cluster_name(bad).unwrap_err()),
                "cluster name"
            );
        }
    }

    #[test]
    fn partitions_and_accounts() {
        validate_slurm_name("partition", "multiple").unwrap();
        validate_slurm_name("account", "hk-project.x_1").unwrap();
        for bad in [
            "",
            "$(rm -rf ~)",
            "a;b",
            "a\nb",
            "a'b",
            "a\"b",
            "a b",
            "a,b",
        ] {
            let e = validate_slurm_name("partition", bad).unwrap_err();
            assert_eq!(e.field(), "partition");
            assert!(e.to_string().contains("invalid partition"), "{e}");
        }
    }

    #[test]
    fn time_formats() {
        for ok in [
            "30",
            "30:00",
            "1:00:00",
            "00:30:00",
            "1-0",
            "1-02",
            "1-2:30",
            "2-02:30:00",
        ] {
            validate_time(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "abc",
            "1:2:3:4",
            "1-",
            "-1",
            "1-2:3:4:5",
            "30m",
            "1h",
            "UNLIMITED",
            "1 0",
            "30;ls",
            "1--2",
            ":30",
            "30:",
        ] {
            assert_eq!(field_of(validate_time(bad).unwrap_err()), "time", "{bad}");
        }
    }

    #[test]
    fn slurm_memory() {
        for ok in [
            "90000", "90000mb", "90000MB", "90G", "1gb", "512K", "2T", "1000M",
        ] {
            validate_slurm_memory("mem", ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "", "1.5G", "G", "90 G", "90X", "90GiB", "-1", "90G;ls", "$(x)",
        ] {
            assert_eq!(
                field_of(validate_slurm_memory("mem", bad).unwrap_err()),
                "mem",
                "{bad}"
            );
        }
    }

    #[test]
    fn worker_memory() {
        for ok in [
            "auto",
            "4GiB",
            "4GB",
            "4 GiB",
            "0.5",
            "1e9",
            "1073741824",
            "512MiB",
        ] {
            validate_worker_memory(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", "lots", "4XB", "-1", "4GiB;ls", "$(x)"] {
            assert_eq!(
                field_of(validate_worker_memory(bad).unwrap_err()),
                "memory_limit",
                "{bad}"
            );
        }
    }

    #[test]
    fn interfaces_and_hosts() {
        for ok in ["ib0", "lo", "eth0.100", "enp1s0f0"] {
            validate_interface(ok).unwrap();
        }
        for bad in ["", "ib0 lo", "$(x)", "a;b", "averyveryverylongname"] {
            validate_interface(bad).unwrap_err();
        }
        for ok in ["uc2.scc.kit.edu", "alice@login1", "localhost"] {
            validate_login_host(ok).unwrap();
        }
        for bad in ["", "-oProxyCommand=x", "a b", "a;b", "a@b@c$"] {
            assert_eq!(
                field_of(validate_login_host(bad).unwrap_err()),
                "login_host",
                "{bad}"
            );
        }
    }

    #[test]
    fn sbatch_paths() {
        validate_sbatch_path("log_dir", "/home/u/My Notebooks/logs").unwrap();
        for bad in [
            "logs", "~/logs", "/a/$HOME", "/a/%j", "/a/\"b", "/a\nb", "/a/'b", "/a/`x`",
        ] {
            assert_eq!(
                field_of(validate_sbatch_path("log_dir", bad).unwrap_err()),
                "log_dir"
            );
        }
    }

    #[test]
    fn shell_text_quotes_literals_and_expands_only_variables() {
        let t = ShellText::parse("local_directory", "$TMP/dask").unwrap();
        assert_eq!(t.to_shell(), "\"${TMP}\"'/dask'");
        let t = ShellText::parse("x", "/a b/${HOME}x/it's").unwrap();
        assert_eq!(t.to_shell(), "'/a b/'\"${HOME}\"'x/it'\\''s'");
        let t = ShellText::parse("x", "").unwrap();
        assert_eq!(t.to_shell(), "''");
        assert_eq!(
            ShellText::parse("x", "/plain").unwrap().to_shell(),
            "'/plain'"
        );
    }

    #[test]
    fn shell_text_refuses_substitutions() {
        for bad in [
            "$(rm -rf ~)",
            "$((1+1))",
            "`id`",
            "a\nb",
            "${HOME",
            "$",
            "a$-b",
            "${A B}",
            "$1",
        ] {
            let e = ShellText::parse("python_env", bad).unwrap_err();
            assert_eq!(e.field(), "python_env", "{bad}");
        }
    }

    #[test]
    fn shell_text_output_survives_bash() {
        // The quoted word, echoed by a real bash, gives back the literal text.
        let tricky = "/a b/'quoted' \"double\" ; & | * ? [x] \\ end";
        let word = ShellText::parse("x", tricky).unwrap().to_shell();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("printf %s {word}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), tricky);
        let word = ShellText::parse("x", "$RCK_T/x y").unwrap().to_shell();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("printf %s {word}"))
            .env("RCK_T", "/t m p")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "/t m p/x y");
    }

    #[test]
    fn map_by_policies() {
        assert_eq!(
            MapBy::core_pe().value_for(20).as_deref(),
            Some("core:PE=20")
        );
        assert_eq!(MapBy(String::new()).value_for(20), None);
        assert_eq!(MapBy("slot".into()).value_for(2).as_deref(), Some("slot"));
        MapBy::core_pe().validate().unwrap();
        MapBy("ppr:2:node:PE=4".into()).validate().unwrap();
        assert_eq!(
            MapBy("core; rm -rf ~".into())
                .validate()
                .unwrap_err()
                .field(),
            "map_by"
        );
    }

    #[test]
    fn env_names() {
        assert!(is_env_name("OMPI_MCA_x"));
        assert!(is_env_name("_a1"));
        for bad in ["", "1A", "A-B", "A B", "A=B", "A;B"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }
}
