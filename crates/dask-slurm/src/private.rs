//! Files only the user can read: 0700 directories and 0600 files, whatever the umask, and the
//! check that a directory for secrets does not sit where other users could swap it.
//!
//! Modes are given when a file or directory is created (never `chmod` after a secret was
//! written), and a file is always created anew (`O_CREAT | O_EXCL`, which also refuses to follow
//! a symlink planted in its place). A directory of ours that already exists with looser bits (made
//! by an earlier version under the usual umask) is tightened to 0700 before anything is written
//! into it.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of private directories.
pub const DIR_MODE: u32 = 0o700;
/// The mode of private files.
pub const FILE_MODE: u32 = 0o600;

/// Why a directory is not a safe place for the user's secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnsafeLocation {
    /// Users other than the owner can create, rename or delete entries in `dir`.
    #[error(
        "{} is writable by other users (mode {mode:o}, no sticky bit): they could replace the \
         files below it; use a directory only you can write (chmod go-w {}), or point \
         XDG_STATE_HOME elsewhere",
        dir.display(),
        dir.display()
    )]
    Writable {
        /// The directory.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// `dir` belongs to another user (not root), who controls what is below it.
    #[error(
        "{} belongs to another user (uid {owner}), who could replace the files below it; \
         point XDG_STATE_HOME to a directory of your own",
        dir.display()
    )]
    ForeignOwner {
        /// The directory.
        dir: PathBuf,
        /// Its owner's uid.
        owner: u32,
    },
    /// An ancestor could not be examined.
    #[error("cannot examine {}: {reason}", dir.display())]
    Unreadable {
        /// The directory.
        dir: PathBuf,
        /// The error.
        reason: String,
    },
}

/// Checks that no other user can change what `dir` holds: every existing directory on its path
/// (as written, and with symlinks resolved) must belong to this user or to root, and must not be
/// group- or world-writable unless it has the sticky bit (like `/tmp`, where others cannot
/// rename or delete this user's entries). Parts of the path that do not exist yet are skipped:
/// [`create_dir`] makes them 0700.
///
/// One exception: a directory writable by its group only, when that group is the owner's own
/// user-private group (named like the owner, the owner's primary group, no other members), as
/// Debian's and Red Hat's `USERGROUPS_ENAB` make with umask 002: no one else is in it.
pub fn check_location(dir: &Path) -> Result<(), UnsafeLocation> {
    let me = rustix::process::geteuid().as_raw();
    let mut chain: Vec<PathBuf> = dir.ancestors().map(Path::to_path_buf).collect();
    if let Some(real) = dir
        .ancestors()
        .find(|a| a.exists())
        .and_then(|a| a.canonicalize().ok())
    {
        chain.extend(real.ancestors().map(Path::to_path_buf));
    }
    for path in chain {
        if path.as_os_str().is_empty() {
            continue;
        }
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(UnsafeLocation::Unreadable {
                    dir: path,
                    reason: e.to_string(),
                })
            }
        };
        if meta.uid() != me && meta.uid() != 0 {
            return Err(UnsafeLocation::ForeignOwner {
                dir: path,
                owner: meta.uid(),
            });
        }
        let mode = meta.mode() & 0o7777;
        let others_write =
            mode & 0o002 != 0 || (mode & 0o020 != 0 && !is_private_group(meta.gid(), meta.uid()));
        if others_write && mode & 0o1000 == 0 {
            return Err(UnsafeLocation::Writable { dir: path, mode });
        }
    }
    Ok(())
}

/// Whether group `gid` is the user-private group of user `uid`: it is the user's primary group,
/// it has the user's name, and it lists no member but the user.
fn is_private_group(gid: u32, uid: u32) -> bool {
    let mut buf = vec![0 as libc::c_char; 16384];
    // SAFETY: getpwuid_r and getgrgid_r write only into `pwd`/`grp` and `buf` (of the length
    // given); the strings they point to live in `buf`, which outlives every read below.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) != 0
            || found.is_null()
            || pwd.pw_gid != gid
        {
            return false;
        }
        let user = std::ffi::CStr::from_ptr(pwd.pw_name).to_owned();
        let mut grp: libc::group = std::mem::zeroed();
        let mut found: *mut libc::group = std::ptr::null_mut();
        if libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut found) != 0
            || found.is_null()
            || std::ffi::CStr::from_ptr(grp.gr_name) != user.as_c_str()
        {
            return false;
        }
        let mut member = grp.gr_mem;
        while !member.is_null() && !(*member).is_null() {
            if std::ffi::CStr::from_ptr(*member) != user.as_c_str() {
                return false;
            }
            member = member.add(1);
        }
        true
    }
}

/// Creates `dir` and its missing parents with mode 0700 (whatever the umask); an existing `dir`
/// of this user with looser bits is tightened to 0700. Existing parents are left as they are.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    let meta = std::fs::metadata(dir)?;
    // DirBuilder's mode is filtered by the umask, so set it exactly on what is ours.
    if meta.uid() == rustix::process::geteuid().as_raw() && meta.mode() & 0o7777 != DIR_MODE {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Creates `path` anew with mode 0600 (an existing file or symlink of that name is removed
/// first) and returns it open for writing.
pub fn create_file(path: &Path) -> std::io::Result<File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    // The mode given to open(2) is filtered by the umask too; 0600 minus a umask can only be
    // stricter, but keep the file readable and writable by its owner.
    if file.metadata()?.mode() & 0o777 != FILE_MODE {
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(file)
}

/// Writes `contents` to a new 0600 file at `path` (see [`create_file`]) and syncs it.
pub fn write_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = create_file(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh scratch directory (0700) for one test.
    pub(crate) fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rck-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        create_dir(&dir).unwrap();
        dir
    }

    pub(crate) fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    /// Runs `f` with the process umask set to `mask` (tests in this module share no files, and
    /// every creation here gives its mode explicitly, which is the point of the test).
    fn with_umask<T>(mask: u32, f: impl FnOnce() -> T) -> T {
        use rustix::fs::Mode;
        let old = rustix::process::umask(Mode::from_raw_mode(mask));
        let result = f();
        rustix::process::umask(old);
        result
    }

    #[test]
    fn modes_are_private_whatever_the_umask() {
        let base = scratch("private-modes");
        for (i, mask) in [0o000, 0o022, 0o077].into_iter().enumerate() {
            let dir = base.join(format!("u{i}/a/b"));
            with_umask(mask, || {
                create_dir(&dir).unwrap();
                write_file(&dir.join("secret"), b"x").unwrap();
            });
            assert_eq!(mode(&dir), 0o700, "umask {mask:o}");
            assert_eq!(mode(&base.join(format!("u{i}/a"))), 0o700, "umask {mask:o}");
            assert_eq!(mode(&dir.join("secret")), 0o600, "umask {mask:o}");
        }
        // An existing directory of ours is tightened; an existing file is replaced.
        let loose = base.join("loose");
        std::fs::create_dir(&loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(loose.join("f"), "old").unwrap();
        std::fs::set_permissions(loose.join("f"), std::fs::Permissions::from_mode(0o644)).unwrap();
        create_dir(&loose).unwrap();
        write_file(&loose.join("f"), b"new").unwrap();
        assert_eq!(mode(&loose), 0o700);
        assert_eq!(mode(&loose.join("f")), 0o600);
        assert_eq!(std::fs::read(loose.join("f")).unwrap(), b"new");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let base = scratch("private-symlink");
        let target = base.join("elsewhere");
        std::fs::write(&target, "theirs").unwrap();
        std::os::unix::fs::symlink(&target, base.join("key.pem")).unwrap();
        write_file(&base.join("key.pem"), b"mine").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"theirs");
        assert!(!std::fs::symlink_metadata(base.join("key.pem"))
            .unwrap()
            .file_type()
            .is_symlink());
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// A group that is nobody's private group (`users` on Debian, or `nogroup`).
    const PUBLIC_GROUP: u32 = 100;

    #[test]
    fn private_groups() {
        let (uid, gid) = (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
        assert!(!is_private_group(PUBLIC_GROUP, uid) || gid == PUBLIC_GROUP);
        if uid == 0 {
            // root's group root (gid 0) has no other members on this kind of system.
            assert!(is_private_group(0, 0));
        }
        assert!(!is_private_group(gid, 65534));
    }

    #[test]
    fn writable_ancestors_are_refused() {
        let base = scratch("private-location");
        let ok = base.join("state/rust-cluster-kernel/c/tls");
        check_location(&ok).unwrap();

        let open = base.join("open");
        std::fs::create_dir(&open).unwrap();
        let root = rustix::process::geteuid().as_raw() == 0;
        let mut cases = vec![0o777, 0o757];
        if root {
            // Only root can give the directory to a group with other members.
            std::os::unix::fs::chown(&open, None, Some(PUBLIC_GROUP)).unwrap();
            cases.push(0o775);
        }
        for bits in cases {
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(bits)).unwrap();
            match check_location(&open.join("rust-cluster-kernel/c/tls")) {
                Err(UnsafeLocation::Writable { dir, mode }) => {
                    assert_eq!((dir, mode), (open.clone(), bits));
                }
                other => panic!("{bits:o}: {other:?}"),
            }
        }
        // Writable by the owner's private group only: fine.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o775)).unwrap();
        let mine = rustix::process::getegid().as_raw();
        std::os::unix::fs::chown(&open, None, Some(mine)).unwrap();
        if is_private_group(mine, rustix::process::geteuid().as_raw()) {
            check_location(&open.join("c")).unwrap();
        }
        // Like /tmp: world-writable with the sticky bit is fine.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_location(&open.join("rust-cluster-kernel/c/tls")).unwrap();

        // Through a symlink: the real directory's chain counts too.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let real = open.join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        let private = base.join("private");
        create_dir(&private).unwrap();
        std::os::unix::fs::symlink(&real, private.join("link")).unwrap();
        let err = check_location(&private.join("link/c/tls")).unwrap_err();
        assert!(err.to_string().contains("writable by other users"), "{err}");
        assert!(err.to_string().contains("chmod go-w"), "{err}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn another_users_directory_is_refused() {
        if rustix::process::geteuid().as_raw() != 0 {
            return; // only root can give a directory away
        }
        let base = scratch("private-owner");
        let theirs = base.join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = check_location(&theirs.join("c/tls")).unwrap_err();
        assert_eq!(
            err,
            UnsafeLocation::ForeignOwner {
                dir: theirs.clone(),
                owner: 65534
            }
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
