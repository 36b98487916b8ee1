//! Live cards: every cluster card shown in the notebook keeps its display id here, and the
//! cluster manager's change notifications replace those cards in place (`update_display_data`),
//! also long after the cell that showed them has finished.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dask_slurm::manager::Clusters;
use dask_slurm::model::{ClusterState, ClusterView};

use crate::cell::{new_display_id, Output};
use crate::display::card::cluster_card;
use crate::jupyter_server::Dashboards;

/// Cards kept per cluster: older ones stop updating (they are still on the page).
const CARDS_PER_CLUSTER: usize = 8;

/// The cards on the page, by cluster name.
pub struct LiveCards {
    cards: Mutex<HashMap<String, Vec<(String, Output)>>>,
    /// The dashboard links through the Jupyter server that the cards show; a cluster that ends
    /// has its link forgotten (and its relay ended) here.
    dashboards: Arc<Dashboards>,
}

impl LiveCards {
    /// A board subscribed to `clusters`' changes, whose cards link dashboards as `dashboards`
    /// finds.
    pub fn follow(clusters: &Clusters, dashboards: Arc<Dashboards>) -> Arc<LiveCards> {
        let board = Arc::new(LiveCards {
            cards: Mutex::default(),
            dashboards,
        });
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
        let link = self.dashboards.for_view(view, false);
        out.display_with_id(&cluster_card(view, link.as_ref()), &id);
        let mut cards = self.cards.lock().expect("live cards");
        let list = cards.entry(view.name.clone()).or_default();
        list.push((id, out.clone()));
        if list.len() > CARDS_PER_CLUSTER {
            list.remove(0);
        }
    }

    fn update(&self, view: &ClusterView) {
        let shown = self
            .cards
            .lock()
            .expect("live cards")
            .contains_key(&view.name);
        // Probing the link may take a moment: not while holding the cards. The view of a
        // cluster that ended makes its link forgotten (and its relay end), card or not.
        let ended = matches!(view.state, ClusterState::Finished | ClusterState::Failed);
        let link = (shown || ended)
            .then(|| self.dashboards.for_view(view, false))
            .flatten();
        let cards = self.cards.lock().expect("live cards");
        if let Some(list) = cards.get(&view.name) {
            let bundle = cluster_card(view, link.as_ref());
            for (id, out) in list {
                out.update_display(&bundle, id);
            }
        }
    }
}
