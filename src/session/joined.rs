//! The rooms a connection's pipes joined: (pipe, room id) pairs, a handful per connection.
//!
//! A sorted vector, not a `BTreeSet`: a B-tree allocates a whole node (eleven slots, ~370 bytes) for a
//! connection's first room, and most connections hold one or two, so a vector costs a tenth of that per
//! connection of a big room; lookups stay a binary search and iteration keeps the set's order.

/// (pipe, room id) pairs, each once, in order.
#[derive(Debug, Clone, Default)]
pub struct JoinedRooms(Vec<(u16, String)>);

impl JoinedRooms {
    pub fn contains(&self, key: &(u16, String)) -> bool {
        self.0.binary_search(key).is_ok()
    }

    /// Adds a pair; `false` if it was there already.
    pub fn insert(&mut self, key: (u16, String)) -> bool {
        match self.0.binary_search(&key) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, key);
                true
            }
        }
    }

    /// Removes a pair; `false` if it was not there.
    pub fn remove(&mut self, key: &(u16, String)) -> bool {
        match self.0.binary_search(key) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, (u16, String)> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a JoinedRooms {
    type Item = &'a (u16, String);
    type IntoIter = std::slice::Iter<'a, (u16, String)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::JoinedRooms;

    #[test]
    fn behaves_as_an_ordered_set() {
        let mut j = JoinedRooms::default();
        assert!(j.insert((2, "b".into())));
        assert!(j.insert((1, "z".into())));
        assert!(j.insert((2, "a".into())));
        assert!(!j.insert((2, "a".into())), "each pair once");
        assert!(j.contains(&(2, "b".into())));
        let order: Vec<_> = j.iter().cloned().collect();
        assert_eq!(order, [(1, "z".into()), (2, "a".into()), (2, "b".into())]);
        assert!(j.remove(&(2, "a".into())));
        assert!(!j.remove(&(2, "a".into())));
        assert!(!j.contains(&(2, "a".into())));
    }
}
