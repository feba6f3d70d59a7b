//! The snapshot writer: `agg_snapshot.csv` and its sidecar `agg_snapshot.meta.json`, written as a
//! pair that a reader — or a crash at any instant — never sees torn, empty or silently mismatched.
//!
//! # How a pair is written
//!
//! 1. Both texts are rendered in memory first ([`csv::render_csv`], [`sidecar::render_sidecar`]);
//!    the sidecar records the SHA-256 of the CSV bytes.
//! 2. Each text goes to its own new temporary file in the target directory
//!    (`.agg_snapshot.csv.tmp-<pid>-<n>`, created with `create_new`): `write_all`, `flush`,
//!    `sync_all`. Until here nothing visible has changed; any error removes the temporary files.
//! 3. The previous CSV (if any) is hard-linked to `.agg_snapshot.csv.prev-<pid>-<n>` so step 5 can be
//!    undone.
//! 4. **The CSV is renamed over its target first**, then the directory is synced.
//! 5. **The sidecar is renamed over its target second**, then the directory is synced. If this rename
//!    fails, the previous CSV is renamed back from its link, so an error return always means both
//!    previous files are as they were (the one exception is named in [`OutputError::Torn`]).
//!
//! `rename` within a directory is atomic, so each file is always either whole-old or whole-new:
//! never empty, never half written. The pair can differ only between steps 4 and 5, as *new CSV +
//! old sidecar*; the directory sync between the renames makes sure that after a power loss the
//! reverse (*old CSV + new sidecar*) cannot appear either. The sidecar goes last because it is the
//! commit record: a sidecar whose `csv_sha256` matches the CSV says the pair is complete.
//!
//! **Readers**: read the sidecar, then the CSV, and compare the hash ([`verify_pair`]). A mismatch
//! means a write was in flight (read again a moment later) or the writer was killed between the two
//! renames (the next write repairs it). A writer killed mid-write (SIGKILL) leaves at most hidden
//! `.…tmp-…`/`.…prev-…` files beside the pair; they are never read and can be deleted.
//!
//! The output directory is never created implicitly: a missing directory is an error, reported at
//! startup by [`check_output_dir`].

pub mod csv;
pub mod sidecar;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::aggregate::Snapshot;
use crate::control::WriteStatus;
use crate::types::Venue;
use crate::venue::Millis;

pub use self::csv::{CSV_HEADER, CsvError, MAX_QTY_DECIMALS, format_qty, render_csv};
pub use self::sidecar::{render_sidecar, sha256_hex, sidecar_path};

/// Default number of decimals of `buy_qty`/`sell_qty`.
pub const DEFAULT_QTY_DECIMALS: u32 = 4;

/// Where and how to write a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputOptions {
    /// The CSV path; the sidecar goes beside it as `<stem>.meta.json`.
    pub csv_path: PathBuf,
    /// Fractional digits of the quantities (0 to [`MAX_QTY_DECIMALS`]).
    pub qty_decimals: u32,
}

impl OutputOptions {
    /// Options for a CSV path with the default 4 quantity decimals.
    pub fn new(csv_path: impl Into<PathBuf>) -> OutputOptions {
        OutputOptions {
            csv_path: csv_path.into(),
            qty_decimals: DEFAULT_QTY_DECIMALS,
        }
    }
}

/// What a successful write wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteReport {
    /// When the snapshot was taken (Unix ms).
    pub taken_at: Millis,
    /// The CSV written.
    pub csv_path: PathBuf,
    /// The sidecar written.
    pub sidecar_path: PathBuf,
    /// Data rows in the CSV (header excluded).
    pub rows: usize,
    /// Size of the CSV in bytes.
    pub csv_bytes: usize,
    /// SHA-256 of the CSV bytes, as recorded in the sidecar.
    pub csv_sha256: String,
    /// Venues whose books are in the snapshot.
    pub venues: Vec<Venue>,
}

impl WriteReport {
    /// The status the dashboard shows for this write.
    pub fn status(&self) -> WriteStatus {
        WriteStatus {
            at: self.taken_at,
            path: self.csv_path.clone(),
            rows: self.rows,
            venues: self.venues.clone(),
            error: None,
        }
    }
}

/// The [`WriteStatus`] of a write attempt, successful or not.
pub fn write_status(
    snap: &Snapshot,
    opts: &OutputOptions,
    result: &Result<WriteReport, OutputError>,
) -> WriteStatus {
    match result {
        Ok(report) => report.status(),
        Err(e) => WriteStatus {
            at: snap.taken_at,
            path: opts.csv_path.clone(),
            rows: 0,
            venues: snap.included().collect(),
            error: Some(e.to_string()),
        },
    }
}

/// Why a snapshot was not written. No temporary file is left in any case, and except for
/// [`OutputError::Torn`] and [`OutputError::DirSync`] the previous CSV and sidecar are untouched.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The CSV path does not name a file.
    #[error("output path {} does not name a file", .0.display())]
    NotAFile(PathBuf),
    /// The output directory does not exist (it is never created implicitly).
    #[error("cannot write {}: directory {} does not exist", .path.display(), .dir.display())]
    MissingDir {
        /// The file that was to be written.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },
    /// The snapshot cannot be rendered.
    #[error("cannot write {}: {source}", .path.display())]
    Render {
        /// The CSV path.
        path: PathBuf,
        /// Why.
        source: CsvError,
    },
    /// A file operation failed.
    #[error("cannot {action} {}: {}", .path.display(), plain_io(.source))]
    Io {
        /// What was being done (`write`, `replace`, ...).
        action: &'static str,
        /// The path it was done to (the target, not the temporary file).
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Both files were replaced (the pair matches), but syncing the directory failed, so the new
    /// pair may not survive a power loss.
    #[error(
        "wrote {} and its sidecar, but syncing directory {} failed: {}; the new files may not survive a power loss",
        .csv.display(), .dir.display(), plain_io(.source)
    )]
    DirSync {
        /// The CSV written.
        csv: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The CSV was replaced but the sidecar could not be, and the previous CSV could not be put
    /// back: the pair is mismatched until the next successful write ([`verify_pair`] says so).
    #[error(
        "cannot replace {}: {}; {} is already new and could not be restored ({}), so the pair does not match until the next write",
        .sidecar.display(), plain_io(.source), .csv.display(), .restore
    )]
    Torn {
        /// The CSV (new).
        csv: PathBuf,
        /// The sidecar (old).
        sidecar: PathBuf,
        /// Why the sidecar was not replaced.
        source: io::Error,
        /// Why the CSV could not be restored.
        restore: String,
    },
}

/// An OS error in plain words, with its code: `disk full (no space left on device, os error 28)`.
fn plain_io(e: &io::Error) -> String {
    let words = match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory",
        io::ErrorKind::PermissionDenied => "permission denied",
        io::ErrorKind::ReadOnlyFilesystem => "read-only file system",
        io::ErrorKind::StorageFull => "disk full (no space left on device",
        io::ErrorKind::IsADirectory => "it is a directory",
        io::ErrorKind::NotADirectory => "a part of the path is not a directory",
        io::ErrorKind::AlreadyExists => "already exists",
        _ => return e.to_string(),
    };
    let open = words.contains('(');
    match (e.raw_os_error(), open) {
        (Some(code), true) => format!("{words}, os error {code})"),
        (Some(code), false) => format!("{words} (os error {code})"),
        (None, true) => format!("{words})"),
        (None, false) => words.to_string(),
    }
}

/// Render a snapshot and write the CSV and its sidecar as an atomic pair (see the module docs).
/// A pair left mismatched by a writer killed between its two renames is repaired first
/// ([`recover_pair`]).
pub fn write_snapshot(snap: &Snapshot, opts: &OutputOptions) -> Result<WriteReport, OutputError> {
    if let Err(e) = recover_pair(&opts.csv_path) {
        tracing::warn!("{e}");
    }
    write_snapshot_with(snap, opts, &|_| Ok(()))
}

/// What [`recover_pair`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The sidecar was missing its last rename and was rolled forward from its synced temporary
    /// file.
    pub rolled_forward: bool,
    /// Leftover hidden `.tmp-`/`.prev-` files of a killed writer that were removed.
    pub removed: usize,
}

/// Repair what a writer killed mid-write (SIGKILL, power loss) can leave behind, as the next run
/// does before its first write:
/// - between its two renames a writer leaves the new CSV beside the old sidecar; the new sidecar is
///   then already complete and synced in its hidden temporary file, so it is renamed into place
///   (roll forward: the sidecar whose `csv_sha256` matches the CSV);
/// - hidden `.tmp-`/`.prev-` files of the pair are removed.
///
/// Call it only when no other process writes the same pair.
pub fn recover_pair(csv_path: &Path) -> Result<Recovery, String> {
    let mut done = Recovery {
        rolled_forward: false,
        removed: 0,
    };
    let Some(meta_path) = sidecar_path(csv_path) else {
        return Ok(done);
    };
    let (Some(csv_name), Some(meta_name)) = (
        csv_path.file_name().and_then(|n| n.to_str()),
        meta_path.file_name().and_then(|n| n.to_str()),
    ) else {
        return Ok(done);
    };
    let dir = dir_of(csv_path);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(done);
    };
    let csv_prefixes = [format!(".{csv_name}.tmp-"), format!(".{csv_name}.prev-")];
    let meta_prefix = format!(".{meta_name}.tmp-");
    let mut leftovers = Vec::new();
    let mut meta_temps = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&meta_prefix) {
            meta_temps.push(entry.path());
        } else if csv_prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            leftovers.push(entry.path());
        }
    }
    if csv_path.exists() && verify_pair(csv_path).is_err() {
        if let Ok(csv) = std::fs::read(csv_path) {
            let actual = sha256_hex(&csv);
            let matching = meta_temps.iter().position(|p| {
                std::fs::read_to_string(p)
                    .ok()
                    .and_then(|text| sidecar::recorded_csv_sha256(&text).ok())
                    .is_some_and(|h| h == actual)
            });
            if let Some(i) = matching {
                let temp = meta_temps.remove(i);
                std::fs::rename(&temp, &meta_path).map_err(|e| {
                    format!(
                        "cannot repair {} from {}: {}",
                        meta_path.display(),
                        temp.display(),
                        plain_io(&e)
                    )
                })?;
                let _ = sync_dir(&dir);
                done.rolled_forward = true;
                tracing::info!(
                    "repaired {} after an interrupted write",
                    meta_path.display()
                );
            }
        }
    }
    for path in leftovers.into_iter().chain(meta_temps) {
        if std::fs::remove_file(&path).is_ok() {
            done.removed += 1;
        }
    }
    Ok(done)
}

/// A point in the pair write where a test can inject a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    CreateTemp(Part),
    Write(Part),
    Sync(Part),
    LinkBackup,
    RenameCsv,
    SyncDirAfterCsv,
    RenameSidecar,
    SyncDirAfterSidecar,
}

/// Which file of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Csv,
    Sidecar,
}

/// Called before each step; an error is treated as that step's OS error. Production passes a
/// no-op; tests fail chosen steps (running as root, permissions cannot make real writes fail).
type StepHook<'a> = &'a dyn Fn(Step) -> io::Result<()>;

fn write_snapshot_with(
    snap: &Snapshot,
    opts: &OutputOptions,
    hook: StepHook<'_>,
) -> Result<WriteReport, OutputError> {
    let csv_path = opts.csv_path.clone();
    let (Some(csv_name), Some(meta_path)) = (
        csv_path.file_name().and_then(|n| n.to_str()),
        sidecar_path(&csv_path),
    ) else {
        return Err(OutputError::NotAFile(csv_path));
    };
    let csv_text = render_csv(snap, opts.qty_decimals).map_err(|source| OutputError::Render {
        path: csv_path.clone(),
        source,
    })?;
    let meta_text = render_sidecar(snap, csv_name, &csv_text, opts.qty_decimals);
    write_pair(
        &csv_path,
        csv_text.as_bytes(),
        &meta_path,
        meta_text.as_bytes(),
        hook,
    )?;
    Ok(WriteReport {
        taken_at: snap.taken_at,
        csv_path,
        sidecar_path: meta_path,
        rows: snap.bins.len(),
        csv_bytes: csv_text.len(),
        csv_sha256: sha256_hex(csv_text.as_bytes()),
        venues: snap.included().collect(),
    })
}

/// The directory a path lives in (`.` for a bare file name).
fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A hidden sibling name for `target` that no other writer (process or call) uses.
fn sibling_name(target: &Path, kind: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.{kind}-{}-{n}", std::process::id()))
}

/// A file that is removed when dropped unless [`Scratch::keep`] was called: temporary files and
/// the backup link never outlive a failed write, even on panic.
struct Scratch {
    path: PathBuf,
    armed: bool,
}

impl Scratch {
    fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the file may already be gone (renamed or never fully created).
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Write `bytes` to a new temporary file beside `target`, synced to disk.
fn write_temp(
    target: &Path,
    bytes: &[u8],
    part: Part,
    hook: StepHook<'_>,
) -> Result<Scratch, OutputError> {
    let io_err = |source| OutputError::Io {
        action: "write",
        path: target.to_path_buf(),
        source,
    };
    let path = sibling_name(target, "tmp");
    let created = hook(Step::CreateTemp(part))
        .and_then(|()| OpenOptions::new().write(true).create_new(true).open(&path));
    let mut file = match created {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir = dir_of(target);
            return Err(if dir.is_dir() {
                io_err(e)
            } else {
                OutputError::MissingDir {
                    path: target.to_path_buf(),
                    dir,
                }
            });
        }
        Err(e) => return Err(io_err(e)),
    };
    let scratch = Scratch { path, armed: true };
    hook(Step::Write(part))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.flush())
        .map_err(io_err)?;
    hook(Step::Sync(part))
        .and_then(|()| file.sync_all())
        .map_err(io_err)?;
    Ok(scratch)
}

/// Make renames in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened for syncing elsewhere; renames are as durable as the OS makes
        // them.
        let _ = dir;
        Ok(())
    }
}

fn write_pair(
    csv_path: &Path,
    csv: &[u8],
    meta_path: &Path,
    meta: &[u8],
    hook: StepHook<'_>,
) -> Result<(), OutputError> {
    let dir = dir_of(csv_path);
    // A directory in the way would only fail at rename time, after the CSV was replaced.
    for target in [csv_path, meta_path] {
        if std::fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) {
            return Err(OutputError::Io {
                action: "replace",
                path: target.to_path_buf(),
                source: io::Error::from(io::ErrorKind::IsADirectory),
            });
        }
    }
    let csv_tmp = write_temp(csv_path, csv, Part::Csv, hook)?;
    let meta_tmp = write_temp(meta_path, meta, Part::Sidecar, hook)?;

    // Keep the previous CSV reachable so a failed sidecar rename can put it back. Without a previous
    // CSV (first write) undoing means removing the new one. If the file system has no hard links,
    // the write goes on without an undo ([`OutputError::Torn`] names that case).
    let backup_path = sibling_name(csv_path, "prev");
    let backup =
        match hook(Step::LinkBackup).and_then(|()| std::fs::hard_link(csv_path, &backup_path)) {
            Ok(()) => Undo::Restore(Scratch {
                path: backup_path,
                armed: true,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !csv_path.exists() => Undo::Remove,
            Err(e) => Undo::Impossible(format!("no backup of the previous CSV: {}", plain_io(&e))),
        };

    hook(Step::RenameCsv)
        .and_then(|()| std::fs::rename(&csv_tmp.path, csv_path))
        .map_err(|source| OutputError::Io {
            action: "replace",
            path: csv_path.to_path_buf(),
            source,
        })?;
    csv_tmp.keep();

    let second = hook(Step::SyncDirAfterCsv)
        .and_then(|()| sync_dir(&dir))
        .and_then(|()| hook(Step::RenameSidecar))
        .and_then(|()| std::fs::rename(&meta_tmp.path, meta_path));
    if let Err(source) = second {
        return Err(match backup.undo(csv_path) {
            Ok(()) => OutputError::Io {
                action: "replace",
                path: meta_path.to_path_buf(),
                source,
            },
            Err(restore) => OutputError::Torn {
                csv: csv_path.to_path_buf(),
                sidecar: meta_path.to_path_buf(),
                source,
                restore,
            },
        });
    }
    meta_tmp.keep();
    drop(backup);
    hook(Step::SyncDirAfterSidecar)
        .and_then(|()| sync_dir(&dir))
        .map_err(|source| OutputError::DirSync {
            csv: csv_path.to_path_buf(),
            dir,
            source,
        })
}

/// How to take back a CSV rename.
enum Undo {
    /// Rename the link to the previous CSV back over the target.
    Restore(Scratch),
    /// There was no previous CSV: remove the new one.
    Remove,
    /// No way back (the reason).
    Impossible(String),
}

impl Undo {
    fn undo(self, csv_path: &Path) -> Result<(), String> {
        match self {
            Undo::Restore(backup) => {
                let r = std::fs::rename(&backup.path, csv_path).map_err(|e| plain_io(&e));
                if r.is_ok() {
                    backup.keep();
                }
                r
            }
            Undo::Remove => std::fs::remove_file(csv_path).map_err(|e| plain_io(&e)),
            Undo::Impossible(why) => Err(why),
        }
    }
}

/// Check that a CSV and its sidecar belong together: the SHA-256 of the CSV bytes equals the
/// sidecar's `csv_sha256`. A mismatch means a write was in flight while reading (read again) or
/// the writer died between its two renames (the next write repairs it).
pub fn verify_pair(csv_path: &Path) -> Result<(), String> {
    let meta_path = sidecar_path(csv_path)
        .ok_or_else(|| format!("{} does not name a file", csv_path.display()))?;
    let meta = std::fs::read_to_string(&meta_path)
        .map_err(|e| format!("cannot read {}: {}", meta_path.display(), plain_io(&e)))?;
    let csv = std::fs::read(csv_path)
        .map_err(|e| format!("cannot read {}: {}", csv_path.display(), plain_io(&e)))?;
    let recorded = sidecar::recorded_csv_sha256(&meta)
        .map_err(|why| format!("{} {why}", meta_path.display()))?;
    let actual = sha256_hex(&csv);
    if recorded == actual {
        Ok(())
    } else {
        Err(format!(
            "{} does not match {}: its SHA-256 is {actual}, the sidecar records {recorded} (a write was in flight or was interrupted; read again)",
            csv_path.display(),
            meta_path.display()
        ))
    }
}

/// Startup check of the output location: the CSV path names a file (not a directory) in a
/// directory that exists and is writable (a temporary file is created and removed there). The
/// error is one line for a human.
pub fn check_output_dir(csv_path: &Path) -> Result<(), String> {
    if csv_path.file_name().is_none() || csv_path.is_dir() {
        return Err(format!(
            "output path {} is a directory; give a file path such as {}",
            csv_path.display(),
            csv_path.join("agg_snapshot.csv").display()
        ));
    }
    let dir = dir_of(csv_path);
    if !dir.exists() {
        return Err(format!(
            "output directory {} does not exist (create it first; depthagg does not create directories)",
            dir.display()
        ));
    }
    if !dir.is_dir() {
        return Err(format!(
            "output directory {} is not a directory",
            dir.display()
        ));
    }
    let probe = sibling_name(csv_path, "probe");
    let created = OpenOptions::new().write(true).create_new(true).open(&probe);
    match created {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "output directory {} is not writable: {}",
            dir.display(),
            plain_io(&e)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{AggConfig, Window, aggregate};
    use crate::bins::BinSize;
    use crate::decimal::Dec;
    use crate::engine::VenueState;
    use crate::venue::{FeedState, Protocol};

    fn snapshot(bid_qty: &str) -> Snapshot {
        let d = |s: &str| Dec::parse(s).expect("valid decimal");
        let mut st = VenueState::new(Protocol::BinanceSpot, "BTCUSDT", "test", 0);
        st.state = FeedState::Live;
        st.book
            .replace([(d("61000"), d(bid_qty))], [(d("61010"), d("1"))]);
        let cfg = AggConfig {
            bin_size: BinSize::parse("10").expect("positive"),
            weights: [1.0, 0.0, 0.0, 0.0],
            enabled: [true; 4],
            window: Window::DEFAULT,
            renormalize: false,
        };
        aggregate(&[&st], &cfg, 1_000)
    }

    /// Every file name in a directory, sorted.
    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    const PAIR: [&str; 2] = ["agg_snapshot.csv", "agg_snapshot.meta.json"];

    /// A directory holding a first, good pair; returns it with the pair's bytes.
    fn previous_pair() -> (tempfile::TempDir, OutputOptions, Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = OutputOptions::new(dir.path().join("agg_snapshot.csv"));
        write_snapshot(&snapshot("1"), &opts).expect("first write");
        let csv = std::fs::read(&opts.csv_path).expect("csv");
        let meta = std::fs::read(dir.path().join(PAIR[1])).expect("sidecar");
        (dir, opts, csv, meta)
    }

    fn disk_full() -> io::Error {
        io::Error::from_raw_os_error(28)
    }

    #[test]
    fn a_failure_at_any_step_leaves_the_previous_pair_and_no_temp_files() {
        let steps = [
            (Step::CreateTemp(Part::Csv), PAIR[0], "write"),
            (Step::Write(Part::Csv), PAIR[0], "write"),
            (Step::Sync(Part::Csv), PAIR[0], "write"),
            (Step::CreateTemp(Part::Sidecar), PAIR[1], "write"),
            (Step::Write(Part::Sidecar), PAIR[1], "write"),
            (Step::Sync(Part::Sidecar), PAIR[1], "write"),
            (Step::RenameCsv, PAIR[0], "replace"),
            (Step::SyncDirAfterCsv, PAIR[1], "replace"),
            (Step::RenameSidecar, PAIR[1], "replace"),
        ];
        for (fail, target, action) in steps {
            let (dir, opts, csv, meta) = previous_pair();
            let hook = |s: Step| if s == fail { Err(disk_full()) } else { Ok(()) };
            let err =
                write_snapshot_with(&snapshot("2"), &opts, &hook).expect_err("injected failure");
            assert_eq!(
                err.to_string(),
                format!(
                    "cannot {action} {}: disk full (no space left on device, os error 28)",
                    dir.path().join(target).display()
                ),
                "{fail:?}"
            );
            assert_eq!(std::fs::read(&opts.csv_path).expect("csv"), csv, "{fail:?}");
            assert_eq!(
                std::fs::read(dir.path().join(PAIR[1])).expect("sidecar"),
                meta,
                "{fail:?}"
            );
            assert_eq!(listing(dir.path()), PAIR, "{fail:?}");
            verify_pair(&opts.csv_path).expect("previous pair still matches");
        }
    }

    #[test]
    fn a_failed_first_write_leaves_nothing() {
        for fail in [Step::Write(Part::Sidecar), Step::RenameSidecar] {
            let dir = tempfile::tempdir().expect("temp dir");
            let opts = OutputOptions::new(dir.path().join("agg_snapshot.csv"));
            let hook = |s: Step| if s == fail { Err(disk_full()) } else { Ok(()) };
            write_snapshot_with(&snapshot("2"), &opts, &hook).expect_err("injected failure");
            assert_eq!(listing(dir.path()), Vec::<String>::new(), "{fail:?}");
        }
    }

    #[test]
    fn without_a_backup_a_failed_sidecar_rename_is_reported_as_torn() {
        let (dir, opts, _, meta) = previous_pair();
        let hook = |s: Step| match s {
            Step::LinkBackup => Err(io::Error::from_raw_os_error(1)),
            Step::RenameSidecar => Err(disk_full()),
            _ => Ok(()),
        };
        let err = write_snapshot_with(&snapshot("2"), &opts, &hook).expect_err("torn");
        let csv = opts.csv_path.display();
        let side = dir.path().join(PAIR[1]);
        assert_eq!(
            err.to_string(),
            format!(
                "cannot replace {}: disk full (no space left on device, os error 28); {csv} is already new and could not be restored (no backup of the previous CSV: permission denied (os error 1)), so the pair does not match until the next write",
                side.display()
            )
        );
        assert_eq!(std::fs::read(&side).expect("sidecar"), meta);
        assert_eq!(listing(dir.path()), PAIR);
        assert!(verify_pair(&opts.csv_path).is_err());
        // The next good write repairs the pair.
        write_snapshot(&snapshot("3"), &opts).expect("write");
        verify_pair(&opts.csv_path).expect("repaired");
    }

    #[test]
    fn a_failed_final_directory_sync_reports_a_matching_new_pair() {
        let (dir, opts, csv, _) = previous_pair();
        let hook = |s: Step| {
            if s == Step::SyncDirAfterSidecar {
                Err(io::Error::from_raw_os_error(5))
            } else {
                Ok(())
            }
        };
        let err = write_snapshot_with(&snapshot("2"), &opts, &hook).expect_err("sync failed");
        assert_eq!(
            err.to_string(),
            format!(
                "wrote {} and its sidecar, but syncing directory {} failed: Input/output error (os error 5); the new files may not survive a power loss",
                opts.csv_path.display(),
                dir.path().display()
            )
        );
        assert_ne!(std::fs::read(&opts.csv_path).expect("csv"), csv);
        verify_pair(&opts.csv_path).expect("new pair matches");
        assert_eq!(listing(dir.path()), PAIR);
    }

    #[test]
    fn success_replaces_both_and_reports_what_was_written() {
        let (dir, opts, old_csv, _) = previous_pair();
        let report = write_snapshot(&snapshot("2"), &opts).expect("write");
        let csv = std::fs::read_to_string(&opts.csv_path).expect("csv");
        assert_eq!(
            csv,
            "price,buy_qty,sell_qty\n61000,2.0000,0.0000\n61010,0.0000,1.0000\n"
        );
        assert_ne!(csv.as_bytes(), old_csv);
        assert_eq!(
            report,
            WriteReport {
                taken_at: 1_000,
                csv_path: opts.csv_path.clone(),
                sidecar_path: dir.path().join(PAIR[1]),
                rows: 2,
                csv_bytes: csv.len(),
                csv_sha256: sha256_hex(csv.as_bytes()),
                venues: vec![Venue::Binance],
            }
        );
        assert_eq!(
            write_status(&snapshot("2"), &opts, &Ok(report)),
            WriteStatus {
                at: 1_000,
                path: opts.csv_path.clone(),
                rows: 2,
                venues: vec![Venue::Binance],
                error: None,
            }
        );
        assert_eq!(listing(dir.path()), PAIR);
    }

    #[test]
    fn missing_directory_is_named_and_never_created() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("nope");
        let opts = OutputOptions::new(missing.join("agg_snapshot.csv"));
        let snap = snapshot("1");
        let result = write_snapshot(&snap, &opts);
        let err = result.as_ref().expect_err("missing dir");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot write {}: directory {} does not exist",
                opts.csv_path.display(),
                missing.display()
            )
        );
        assert!(!missing.exists());
        let status = write_status(&snap, &opts, &result);
        assert_eq!(status.rows, 0);
        assert_eq!(status.error, Some(err.to_string()));
        assert_eq!(
            check_output_dir(&opts.csv_path),
            Err(format!(
                "output directory {} does not exist (create it first; depthagg does not create directories)",
                missing.display()
            ))
        );
    }

    #[test]
    fn a_directory_in_the_way_fails_before_anything_changes() {
        for blocked in PAIR {
            let dir = tempfile::tempdir().expect("temp dir");
            let opts = OutputOptions::new(dir.path().join(PAIR[0]));
            let other = dir
                .path()
                .join(if blocked == PAIR[0] { PAIR[1] } else { PAIR[0] });
            std::fs::write(&other, "previous").expect("previous file");
            std::fs::create_dir(dir.path().join(blocked)).expect("dir in the way");
            let err = write_snapshot(&snapshot("1"), &opts).expect_err("directory in the way");
            assert_eq!(
                err.to_string(),
                format!(
                    "cannot replace {}: it is a directory",
                    dir.path().join(blocked).display()
                )
            );
            assert_eq!(
                std::fs::read_to_string(&other).expect("previous"),
                "previous"
            );
            assert_eq!(listing(dir.path()), PAIR);
        }
    }

    #[test]
    fn check_output_dir_accepts_a_writable_directory_and_refuses_a_directory_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(
            check_output_dir(&dir.path().join("agg_snapshot.csv")),
            Ok(())
        );
        assert_eq!(listing(dir.path()), Vec::<String>::new());
        assert_eq!(
            check_output_dir(dir.path()),
            Err(format!(
                "output path {} is a directory; give a file path such as {}",
                dir.path().display(),
                dir.path().join("agg_snapshot.csv").display()
            ))
        );
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").expect("file");
        assert_eq!(
            check_output_dir(&file.join("agg_snapshot.csv")),
            Err(format!(
                "output directory {} is not a directory",
                file.display()
            ))
        );
    }

    #[test]
    fn too_many_decimals_is_refused_before_writing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = OutputOptions {
            csv_path: dir.path().join(PAIR[0]),
            qty_decimals: 19,
        };
        let err = write_snapshot(&snapshot("1"), &opts).expect_err("19 decimals");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot write {}: quantity decimals 19 is above the maximum of 18",
                opts.csv_path.display()
            )
        );
        assert_eq!(listing(dir.path()), Vec::<String>::new());
    }
}
