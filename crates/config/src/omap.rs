//! A small insertion-ordered string map (Python dict semantics: overwriting keeps the position).

use indexmap::IndexMap;

/// Insertion-ordered map from option name to value: each key is held once, in the entry (the
/// index holds positions), so inserting and cloning copy one string per option, not two.
#[derive(Debug, Clone)]
pub struct OrderedMap<V> {
    entries: IndexMap<String, V, foldhash::fast::RandomState>,
}

/// Equal when the same entries come in the same order (as two lists of pairs).
impl<V: PartialEq> PartialEq for OrderedMap<V> {
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len() && self.entries.iter().eq(other.entries.iter())
    }
}

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> OrderedMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        Self {
            entries: IndexMap::default(),
        }
    }

    /// Inserts or overwrites (keeping the original position).
    pub fn insert(&mut self, key: impl Into<String>, value: V) {
        self.entries.insert(key.into(), value);
    }

    /// Value of `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key)
    }

    /// Mutable value of `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.entries.get_mut(key)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.entries.iter()
    }

    /// Keys in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.keys()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<V: Clone> OrderedMap<V> {
    /// Inserts every entry of `other` (overwriting).
    pub fn update(&mut self, other: &OrderedMap<V>) {
        for (k, v) in other.iter() {
            match self.entries.get_mut(k.as_str()) {
                Some(slot) => *slot = v.clone(),
                None => {
                    self.entries.insert(k.clone(), v.clone());
                }
            }
        }
    }

    /// Converts to a vector of pairs.
    pub fn to_vec(&self) -> Vec<(String, V)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl<V> FromIterator<(String, V)> for OrderedMap<V> {
    fn from_iter<T: IntoIterator<Item = (String, V)>>(iter: T) -> Self {
        let mut m = OrderedMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> OrderedMap<String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overwriting_keeps_the_position_and_equality_follows_the_order() {
        let mut m = map(&[("a", "1"), ("b", "2"), ("c", "3")]);
        m.insert("a", "one".to_string());
        m.update(&map(&[("c", "three"), ("d", "4")]));
        assert_eq!(
            m.to_vec(),
            vec![
                ("a".to_string(), "one".to_string()),
                ("b".into(), "2".into()),
                ("c".into(), "three".into()),
                ("d".into(), "4".into()),
            ]
        );
        assert_eq!(m.get("c").map(String::as_str), Some("three"));
        assert!(m.contains_key("d") && !m.contains_key("e"));
        // The same entries in another order are another map (fail2ban's options are ordered).
        assert_ne!(
            map(&[("a", "1"), ("b", "2")]),
            map(&[("b", "2"), ("a", "1")])
        );
        assert_eq!(
            map(&[("a", "1"), ("b", "2")]),
            map(&[("a", "1"), ("b", "2")])
        );
        assert_ne!(map(&[("a", "1")]), map(&[("a", "1"), ("b", "2")]));
    }
}
