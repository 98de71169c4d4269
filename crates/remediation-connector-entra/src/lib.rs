//! Microsoft Entra ID connector (work in progress).
mod graph;
mod state;
