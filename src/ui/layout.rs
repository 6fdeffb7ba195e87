//! The window's docked layout: every panel is a tile of an `egui_tiles` tree that a user can
//! resize, drag, tab together and close; the tree is saved with the settings.

use serde::{Deserialize, Serialize};

/// One panel of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Pane {
    /// Who we are, the connection, contacts, recent calls and devices.
    Dialer,
    /// The incoming banner, status, video grid and controls.
    Call,
    /// Live plots of rtt, bitrate, fps and loss.
    Stats,
    /// A switch and counts per callback.
    Callbacks,
    /// The timeline table and its filters.
    Timeline,
    /// The selected entry.
    Inspector,
    /// The selected call's statuses and events over time.
    Swimlane,
}

impl Pane {
    /// Every panel, in the order the View menu lists them.
    pub const ALL: [Self; 7] = [
        Self::Dialer,
        Self::Call,
        Self::Stats,
        Self::Callbacks,
        Self::Timeline,
        Self::Inspector,
        Self::Swimlane,
    ];

    /// The tab title.
    pub const fn title(self) -> &'static str {
        match self {
            Self::Dialer => "Dialer",
            Self::Call => "Call",
            Self::Stats => "Stats",
            Self::Callbacks => "Callbacks",
            Self::Timeline => "Timeline",
            Self::Inspector => "Inspector",
            Self::Swimlane => "Swimlane",
        }
    }
}

/// The layout tree of the window.
pub type Layout = egui_tiles::Tree<Pane>;

/// The id every layout tree has (a restored tree keeps its own, which is this one).
fn tree_id() -> egui::Id {
    egui::Id::unique("callscope layout")
}

/// The layout of a first start and of "Reset layout": the dialer, the call and the callbacks
/// above; the timeline, and the inspector, swimlane and stats as tabs, below.
pub fn default_layout() -> Layout {
    let mut tiles = egui_tiles::Tiles::default();
    let tabs = |tiles: &mut egui_tiles::Tiles<Pane>, panes: &[Pane]| {
        let children = panes.iter().map(|pane| tiles.insert_pane(*pane)).collect();
        tiles.insert_tab_tile(children)
    };
    let dialer = tabs(&mut tiles, &[Pane::Dialer]);
    let call = tabs(&mut tiles, &[Pane::Call]);
    let callbacks = tabs(&mut tiles, &[Pane::Callbacks]);
    let timeline = tabs(&mut tiles, &[Pane::Timeline]);
    let details = tabs(&mut tiles, &[Pane::Inspector, Pane::Swimlane, Pane::Stats]);
    let top = linear(
        &mut tiles,
        egui_tiles::LinearDir::Horizontal,
        &[(dialer, 0.22), (call, 0.53), (callbacks, 0.25)],
    );
    let bottom = linear(
        &mut tiles,
        egui_tiles::LinearDir::Horizontal,
        &[(timeline, 0.62), (details, 0.38)],
    );
    let root = linear(
        &mut tiles,
        egui_tiles::LinearDir::Vertical,
        &[(top, 0.56), (bottom, 0.44)],
    );
    egui_tiles::Tree::new(tree_id(), root, tiles)
}

/// A linear container of `children` with the given shares.
fn linear(
    tiles: &mut egui_tiles::Tiles<Pane>,
    dir: egui_tiles::LinearDir,
    children: &[(egui_tiles::TileId, f32)],
) -> egui_tiles::TileId {
    let mut container =
        egui_tiles::Linear::new(dir, children.iter().map(|(child, _)| *child).collect());
    for (child, share) in children {
        container.shares.set_share(*child, *share);
    }
    tiles.insert_container(egui_tiles::Container::Linear(container))
}

/// Whether `pane` is in the layout.
pub fn contains(layout: &Layout, pane: Pane) -> bool {
    layout.tiles.find_pane(&pane).is_some()
}

/// Closes `pane` (its tab goes; an emptied container is pruned by the next layout pass).
pub fn close(layout: &mut Layout, pane: Pane) {
    if let Some(tile) = layout.tiles.find_pane(&pane) {
        layout.remove_recursively(tile);
    }
}

/// Opens `pane` again as a tab beside the first tab group, or as the whole layout when the
/// layout is empty, and makes it the active tab.
pub fn open(layout: &mut Layout, pane: Pane) {
    if contains(layout, pane) {
        show(layout, pane);
        return;
    }
    let tile = layout.tiles.insert_pane(pane);
    let group = layout.tiles.iter().find_map(|(id, tile)| match tile {
        egui_tiles::Tile::Container(egui_tiles::Container::Tabs(_)) => Some(*id),
        _ => None,
    });
    match (group, layout.root) {
        (Some(group), _) => {
            if let Some(egui_tiles::Tile::Container(container)) = layout.tiles.get_mut(group) {
                container.add_child(tile);
            }
        }
        (None, Some(root)) => {
            let tabs = layout.tiles.insert_tab_tile(vec![tile]);
            let joined = layout.tiles.insert_horizontal_tile(vec![root, tabs]);
            layout.root = Some(joined);
        }
        (None, None) => {
            let tabs = layout.tiles.insert_tab_tile(vec![tile]);
            layout.root = Some(tabs);
        }
    }
    show(layout, pane);
}

/// Makes `pane` the active tab of its group (when it is in the layout).
pub fn show(layout: &mut Layout, pane: Pane) {
    let Some(tile) = layout.tiles.find_pane(&pane) else {
        return;
    };
    let mut child = tile;
    while let Some(parent) = layout.tiles.parent_of(child) {
        if let Some(egui_tiles::Tile::Container(egui_tiles::Container::Tabs(tabs))) =
            layout.tiles.get_mut(parent)
        {
            tabs.set_active(child);
        }
        child = parent;
    }
}

/// A restored layout is used only when it holds panes of this version and at least one.
pub fn usable(layout: &Layout) -> bool {
    layout.root.is_some() && Pane::ALL.iter().any(|pane| contains(layout, *pane))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_layout_holds_every_pane_once() {
        let layout = default_layout();
        for pane in Pane::ALL {
            let count = layout
                .tiles
                .tiles()
                .filter(|tile| matches!(tile, egui_tiles::Tile::Pane(found) if *found == pane))
                .count();
            assert_eq!(count, 1, "{pane:?}");
        }
    }

    #[test]
    fn a_closed_pane_opens_again_and_a_layout_round_trips_through_json() {
        let mut layout = default_layout();
        close(&mut layout, Pane::Stats);
        assert!(!contains(&layout, Pane::Stats));
        open(&mut layout, Pane::Stats);
        assert!(contains(&layout, Pane::Stats));
        let json = serde_json::to_string(&layout).unwrap_or_default();
        let back: Layout =
            serde_json::from_str(&json).unwrap_or_else(|_| Layout::empty(egui::Id::unique("x")));
        assert!(back == layout);
        assert!(usable(&back));
    }
}
