//! Terminal dashboard (ratatui + crossterm).
