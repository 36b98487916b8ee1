//! The squeue arguments a user may pass through (`-p`, `-t`, `-u`, …): filters and sort
//! options only, since the output format is the parsers'.

use super::SlurmError;

/// The squeue options a caller may pass through: filters only, since the output format is ours.
/// Long options with a value, short options with a value, and flags without one.
const SQUEUE_LONG_WITH_VALUE: &[&str] = &[
    "--account",
    "--jobs",
    "--licenses",
    "--name",
    "--partition",
    "--qos",
    "--reservation",
    "--sort",
    "--states",
    "--user",
    "--nodelist",
];
const SQUEUE_LONG_FLAGS: &[&str] = &["--all", "--me", "--array"];
const SQUEUE_SHORT_WITH_VALUE: &[char] = &['A', 'j', 'L', 'n', 'p', 'q', 'R', 'S', 't', 'u', 'w'];
const SQUEUE_SHORT_FLAGS: &[char] = &['a', 'r'];

/// Checks squeue arguments given by a user: only squeue's filter and sort options (`-p`, `-t`, `-u`, `--me`,
/// `-j`, `-n`, `-A`, `-q`, `-w`, `-S`, …) are allowed; format options (`-o`, `-O`, `--json`),
/// `--iterate` and positional words are refused with a clear message.
pub fn check_squeue_filters(args: &[String]) -> Result<(), SlurmError> {
    let refuse = |arg: &str, reason: &str| SlurmError::Argument {
        arg: arg.to_owned(),
        reason: reason.to_owned(),
    };
    let allowed = "allowed: -a -A -j -L -n -p -q -r -R -S -t -u -w --me and their long forms";
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if let Some(long) = arg.strip_prefix("--") {
            let (name, has_value) = match long.split_once('=') {
                Some((name, _)) => (format!("--{name}"), true),
                None => (arg.clone(), false),
            };
            if SQUEUE_LONG_WITH_VALUE.contains(&name.as_str()) {
                if !has_value && iter.next().is_none() {
                    return Err(refuse(arg, "needs a value"));
                }
            } else if SQUEUE_LONG_FLAGS.contains(&name.as_str()) && !has_value {
            } else {
                return Err(refuse(
                    arg,
                    &format!("only filters are passed on, the output format is fixed; {allowed}"),
                ));
            }
        } else if let Some(short) = arg.strip_prefix('-') {
            let mut chars = short.chars();
            let Some(c) = chars.next() else {
                return Err(refuse(arg, allowed));
            };
            let attached = chars.as_str();
            if SQUEUE_SHORT_WITH_VALUE.contains(&c) {
                if attached.is_empty() && iter.next().is_none() {
                    return Err(refuse(arg, "needs a value"));
                }
            } else if SQUEUE_SHORT_FLAGS.contains(&c) && attached.is_empty() {
            } else {
                return Err(refuse(
                    arg,
                    &format!("only filters are passed on, the output format is fixed; {allowed}"),
                ));
            }
        } else {
            return Err(refuse(
                arg,
                &format!("squeue takes options only; {allowed}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings_of(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn squeue_filters() {
        let ok = |a: &[&str]| check_squeue_filters(&strings_of(a)).unwrap();
        let bad = |a: &[&str]| {
            check_squeue_filters(&strings_of(a))
                .unwrap_err()
                .to_string()
        };
        ok(&[]);
        ok(&[
            "-p",
            "multiple",
            "-t",
            "PD,R",
            "--me",
            "-uroot",
            "--states=all",
            "-a",
        ]);
        ok(&["--partition", "single", "-S", "-t,i", "-n", "x", "--array"]);
        assert!(bad(&["-o", "%i"]).contains("the output format is fixed"));
        assert!(bad(&["--format=%i"]).contains("--format"));
        assert!(bad(&["-O", "JobID"]).contains("-O"));
        assert!(bad(&["--json"]).contains("--json"));
        assert!(bad(&["-i", "5"]).contains("-i"));
        assert!(bad(&["--iterate=5"]).contains("--iterate"));
        assert!(bad(&["-p"]).contains("needs a value"));
        assert!(bad(&["extra"]).contains("options only"));
        assert!(bad(&["-ax"]).contains("-ax"));
    }
}
