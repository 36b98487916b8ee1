//! Live cards: every cluster card shown in the notebook keeps its display id here, and the
//! cluster manager's change notifications replace those cards in place (`update_display_data`),
//! also long after the cell that showed them has finished.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dask_slurm::manager::Clusters;
use dask_slurm::model::ClusterView;

use crate::cell::{new_display_id, Output};
use crate::display::card::cluster_card;

/// Cards kept per cluster: older ones stop updating (they are still on the page).
const CARDS_PER_CLUSTER: usize = 8;

/// The cards on the page, by cluster name.
#[derive(Default)]
pub struct LiveCards {
    cards: Mutex<HashMap<String, Vec<(String, Output)>>>,
}

impl LiveCards {
    /// A board subscribed to `clusters`' changes.
    pub fn follow(clusters: &Clusters) -> Arc<LiveCards> {
        let board = Arc::new(LiveCards::default());
        let weak = Arc::downgrade(&board);
        clusters.subscribe(Box::new(move |view| {
            if let Some(board) = weak.upgrade() {
                board.update(view);
            }
        }));
        board
    }

    /// Shows a card for `view` in the current cell and keeps it up to date from now on.
    pub fn show(&self, out: &Output, view: &ClusterView) {
        let id = new_display_id();
        out.display_with_id(&cluster_card(view), &id);
        let mut cards = self.cards.lock().expect("live cards");
        let list = cards.entry(view.name.clone()).or_default();
        list.push((id, out.clone()));
        if list.len() > CARDS_PER_CLUSTER {
            list.remove(0);
        }
    }

    fn update(&self, view: &ClusterView) {
        let cards = self.cards.lock().expect("live cards");
        if let Some(list) = cards.get(&view.name) {
            let bundle = cluster_card(view);
            for (id, out) in list {
                out.update_display(&bundle, id);
            }
        }
    }
}
