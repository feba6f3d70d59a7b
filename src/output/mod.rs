//! Snapshot output (placeholder until the writer lands).

use std::path::PathBuf;

use crate::aggregate::Snapshot;

/// Output settings.
#[derive(Clone, Debug)]
pub struct OutputOptions {
    /// CSV path.
    pub csv_path: PathBuf,
    /// Quantity decimals.
    pub qty_decimals: u32,
}

/// A finished write.
#[derive(Clone, Debug)]
pub struct WriteReport {
    /// Rows written.
    pub rows: usize,
}

/// A failed write.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OutputError(String);

/// Write the CSV and sidecar.
pub fn write_snapshot(snap: &Snapshot, opts: &OutputOptions) -> Result<WriteReport, OutputError> {
    let _ = opts;
    Ok(WriteReport {
        rows: snap.bins.len(),
    })
}
