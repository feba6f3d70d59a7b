//! Terminal dashboard (ratatui + crossterm).

use std::sync::Arc;

use crate::control::Controls;
use crate::engine::SharedVenue;

/// Run the dashboard until the user quits (placeholder until the dashboard lands).
pub async fn run(venues: Vec<SharedVenue>, controls: Arc<Controls>) -> color_eyre::Result<()> {
    let _ = (venues, controls);
    Err(color_eyre::eyre::eyre!(
        "the dashboard is not built into this version; use --headless"
    ))
}
