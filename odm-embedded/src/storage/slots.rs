//! A collection's documents by slot: pages of [`PAGE`] consecutive slots in a persistent
//! ordered map.
//!
//! Slots are handed out in increasing order, so documents fill pages one after the other and
//! a page costs one pointer per slot whatever the tree around it does. Versions share pages;
//! writing to a shared page copies its pointers (not the documents) first.

use super::stored::StoredDoc;
use super::Slot;
use imbl::OrdMap;
use std::sync::Arc;

/// Slots per page.
const PAGE: u64 = 64;

#[derive(Clone)]
struct Page {
    docs: [Option<StoredDoc>; PAGE as usize],
    count: usize,
}

impl Page {
    fn new() -> Page {
        Page {
            docs: std::array::from_fn(|_| None),
            count: 0,
        }
    }
}

/// Documents by slot.
#[derive(Clone, Default)]
pub struct SlotMap {
    pages: OrdMap<u64, Arc<Page>>,
    len: usize,
}

impl std::fmt::Debug for SlotMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

fn place(slot: Slot) -> (u64, usize) {
    (slot / PAGE, (slot % PAGE) as usize)
}

impl SlotMap {
    /// Number of documents.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The document at `slot`.
    pub fn get(&self, slot: Slot) -> Option<&StoredDoc> {
        let (page, at) = place(slot);
        self.pages.get(&page)?.docs[at].as_ref()
    }

    /// Puts `doc` at `slot`; returns the document it replaces.
    pub fn insert(&mut self, slot: Slot, doc: StoredDoc) -> Option<StoredDoc> {
        let (page, at) = place(slot);
        let page = Arc::make_mut(
            self.pages
                .entry(page)
                .or_insert_with(|| Arc::new(Page::new())),
        );
        let old = page.docs[at].replace(doc);
        if old.is_none() {
            page.count += 1;
            self.len += 1;
        }
        old
    }

    /// Takes the document at `slot` out.
    pub fn remove(&mut self, slot: Slot) -> Option<StoredDoc> {
        let (number, at) = place(slot);
        let shared = self.pages.get_mut(&number)?;
        shared.docs[at].as_ref()?;
        let page = Arc::make_mut(shared);
        let old = page.docs[at].take();
        page.count -= 1;
        self.len -= 1;
        if page.count == 0 {
            self.pages.remove(&number);
        }
        old
    }

    /// The documents with their slots, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, &StoredDoc)> + '_ {
        self.pages.iter().flat_map(|(number, page)| {
            page.docs
                .iter()
                .enumerate()
                .filter_map(move |(at, doc)| Some((number * PAGE + at as u64, doc.as_ref()?)))
        })
    }

    /// The documents, in slot order.
    pub fn values(&self) -> impl Iterator<Item = &StoredDoc> + '_ {
        self.iter().map(|(_, doc)| doc)
    }

    /// The lowest slot holding a document.
    pub fn first_slot(&self) -> Option<Slot> {
        self.iter().next().map(|(slot, _)| slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn stored(i: i64) -> StoredDoc {
        StoredDoc::encode(&doc! { "_id": i }).unwrap()
    }

    #[test]
    fn slots_across_pages_and_versions() {
        let mut live = SlotMap::default();
        for slot in 0..200 {
            assert!(live.insert(slot, stored(slot as i64)).is_none());
        }
        let copy = live.clone();
        assert!(live.remove(5).is_some());
        assert!(live.remove(5).is_none());
        for slot in 64..128 {
            live.remove(slot);
        }
        assert_eq!(live.insert(199, stored(-1)), Some(stored(199)));
        assert_eq!((live.len(), copy.len()), (135, 200));
        assert!(live.get(5).is_none() && copy.get(5).is_some());
        assert_eq!(copy.get(199), Some(&stored(199)));
        assert_eq!(live.get(199), Some(&stored(-1)));
        let slots: Vec<Slot> = live.iter().map(|(slot, _)| slot).collect();
        assert_eq!(slots.len(), 135);
        assert!(slots.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(slots[..6], [0, 1, 2, 3, 4, 6]);
        assert_eq!(slots[63], 128);
        assert_eq!(live.first_slot(), Some(0));
        live.remove(0);
        assert_eq!(live.first_slot(), Some(1));
        assert_eq!(live.values().count(), 134);
    }
}
