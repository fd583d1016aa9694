//! A bounded table that forgets its least recently used entry when full.
//!
//! Entries live in a slab linked into a recency list, and a hash map finds a key's slot, so a
//! lookup, a touch and an eviction are O(1) and touching an existing entry never allocates.
//! The hash map is only ever probed, never iterated: which entry is evicted depends only on
//! the order of operations, never on hash seeds, so replays stay deterministic.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// Marks the end of the recency list.
const NIL: u32 = u32::MAX;

/// One slab slot.
enum Slot<K, V> {
    /// A live entry and its neighbours in recency order (`prev` is more recent).
    Used {
        key: K,
        value: V,
        prev: u32,
        next: u32,
    },
    /// A free slot and the next free one.
    Free { next: u32 },
}

/// A map of at most `cap` entries; inserting into a full table evicts the least recently used.
pub(crate) struct Lru<K, V> {
    index: HashMap<K, u32>,
    slots: Vec<Slot<K, V>>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
    free: u32,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// An empty table holding at most `cap` entries (at least one). Memory grows with use.
    pub(crate) fn new(cap: usize) -> Lru<K, V> {
        Lru {
            index: HashMap::new(),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            free: NIL,
            // Slot numbers are u32 and NIL is reserved.
            cap: cap.clamp(1, (NIL - 1) as usize),
        }
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// The entry for `key`, marked most recently used.
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = *self.index.get(key)?;
        self.touch(slot);
        match self.slots.get_mut(slot as usize) {
            Some(Slot::Used { value, .. }) => Some(value),
            _ => None,
        }
    }

    /// The entry for `key` without changing its recency.
    pub(crate) fn peek<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = *self.index.get(key)?;
        match self.slots.get(slot as usize) {
            Some(Slot::Used { value, .. }) => Some(value),
            _ => None,
        }
    }

    /// Inserts (or replaces) `key`, marked most recently used. Returns the entry evicted to
    /// make room, if any.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        if let Some(&slot) = self.index.get(&key) {
            self.touch(slot);
            if let Some(Slot::Used { value: v, .. }) = self.slots.get_mut(slot as usize) {
                *v = value;
            }
            return None;
        }
        let evicted = if self.index.len() >= self.cap {
            self.pop_lru()
        } else {
            None
        };
        let slot = self.alloc(key.clone(), value);
        self.index.insert(key, slot);
        self.link_front(slot);
        evicted
    }

    /// Removes `key` and returns its value.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = self.index.remove(key)?;
        self.unlink(slot);
        self.release(slot).map(|(_, v)| v)
    }

    /// Removes and returns the least recently used entry.
    fn pop_lru(&mut self) -> Option<(K, V)> {
        let slot = self.tail;
        if slot == NIL {
            return None;
        }
        self.unlink(slot);
        let (key, value) = self.release(slot)?;
        self.index.remove(&key);
        Some((key, value))
    }

    fn alloc(&mut self, key: K, value: V) -> u32 {
        let used = Slot::Used {
            key,
            value,
            prev: NIL,
            next: NIL,
        };
        if self.free != NIL {
            let slot = self.free;
            if let Some(s) = self.slots.get_mut(slot as usize) {
                if let Slot::Free { next } = s {
                    self.free = *next;
                }
                *s = used;
                return slot;
            }
        }
        // `cap` keeps the slab below NIL entries.
        let slot = u32::try_from(self.slots.len()).unwrap_or(NIL - 1);
        self.slots.push(used);
        slot
    }

    fn release(&mut self, slot: u32) -> Option<(K, V)> {
        let s = self.slots.get_mut(slot as usize)?;
        let old = std::mem::replace(s, Slot::Free { next: self.free });
        self.free = slot;
        match old {
            Slot::Used { key, value, .. } => Some((key, value)),
            Slot::Free { .. } => None,
        }
    }

    fn links(&self, slot: u32) -> (u32, u32) {
        match self.slots.get(slot as usize) {
            Some(Slot::Used { prev, next, .. }) => (*prev, *next),
            _ => (NIL, NIL),
        }
    }

    fn set_prev(&mut self, slot: u32, to: u32) {
        if let Some(Slot::Used { prev, .. }) = self.slots.get_mut(slot as usize) {
            *prev = to;
        }
    }

    fn set_next(&mut self, slot: u32, to: u32) {
        if let Some(Slot::Used { next, .. }) = self.slots.get_mut(slot as usize) {
            *next = to;
        }
    }

    fn unlink(&mut self, slot: u32) {
        let (prev, next) = self.links(slot);
        if prev == NIL {
            self.head = next;
        } else {
            self.set_next(prev, next);
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.set_prev(next, prev);
        }
        self.set_prev(slot, NIL);
        self.set_next(slot, NIL);
    }

    fn link_front(&mut self, slot: u32) {
        let old = self.head;
        self.set_prev(slot, NIL);
        self.set_next(slot, old);
        if old == NIL {
            self.tail = slot;
        } else {
            self.set_prev(old, slot);
        }
        self.head = slot;
    }

    fn touch(&mut self, slot: u32) {
        if self.head != slot {
            self.unlink(slot);
            self.link_front(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut t = Lru::new(2);
        assert!(t.insert("a", 1).is_none());
        assert!(t.insert("b", 2).is_none());
        // Touch `a`, so `b` is now the oldest.
        assert_eq!(t.get_mut("a").copied(), Some(1));
        assert_eq!(t.insert("c", 3), Some(("b", 2)));
        assert_eq!(t.len(), 2);
        assert!(t.peek("b").is_none());
        assert_eq!(t.insert("d", 4), Some(("a", 1)));
        assert_eq!(t.peek("c"), Some(&3));
    }

    #[test]
    fn replace_remove_and_reuse_slots() {
        let mut t = Lru::new(3);
        t.insert(1u32, "x");
        t.insert(2, "y");
        assert!(t.insert(1, "z").is_none());
        assert_eq!(t.peek(&1), Some(&"z"));
        assert_eq!(t.remove(&1), Some("z"));
        assert_eq!(t.remove(&1), None);
        t.insert(3, "w");
        t.insert(4, "v");
        // The freed slot was reused: the slab never grew past the cap.
        assert_eq!(t.slots.len(), 3);
        assert_eq!(t.len(), 3);
        // Order now (oldest first): 2, 3, 4.
        assert_eq!(t.insert(5, "u"), Some((2, "y")));
        assert_eq!(t.insert(6, "t"), Some((3, "w")));
    }

    #[test]
    fn stays_bounded_under_churn() {
        let mut t = Lru::new(8);
        let mut evicted = 0;
        for i in 0..1000u32 {
            if t.insert(i, i).is_some() {
                evicted += 1;
            }
            if i % 3 == 0 {
                t.get_mut(&(i / 2));
            }
        }
        assert_eq!(t.len(), 8);
        assert_eq!(evicted, 992);
        assert!(t.slots.len() <= 8);
        // The newest key is always kept.
        assert_eq!(t.peek(&999), Some(&999));
    }
}
