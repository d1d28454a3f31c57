//! Name transforms: serde's `rename_all` rules and the default collection name.

/// A serde `rename_all` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

impl RenameRule {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "lowercase" => Self::Lower,
            "UPPERCASE" => Self::Upper,
            "PascalCase" => Self::Pascal,
            "camelCase" => Self::Camel,
            "snake_case" => Self::Snake,
            "SCREAMING_SNAKE_CASE" => Self::ScreamingSnake,
            "kebab-case" => Self::Kebab,
            "SCREAMING-KEBAB-CASE" => Self::ScreamingKebab,
            _ => return None,
        })
    }

    /// Applies the rule to a field name written in snake_case, as serde does.
    pub fn apply_to_field(self, field: &str) -> String {
        match self {
            Self::Lower | Self::Snake => field.to_owned(),
            Self::Upper | Self::ScreamingSnake => field.to_ascii_uppercase(),
            Self::Pascal => field
                .split('_')
                .map(|word| {
                    let mut chars = word.chars();
                    match chars.next() {
                        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                        None => String::new(),
                    }
                })
                .collect(),
            Self::Camel => {
                let pascal = Self::Pascal.apply_to_field(field);
                let mut chars = pascal.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                    None => String::new(),
                }
            }
            Self::Kebab => field.replace('_', "-"),
            Self::ScreamingKebab => field.replace('_', "-").to_ascii_uppercase(),
        }
    }
}

impl RenameRule {
    /// Applies the rule to a variant name written in PascalCase, as serde does.
    pub fn apply_to_variant(self, variant: &str) -> String {
        match self {
            Self::Pascal => variant.to_owned(),
            Self::Lower => variant.to_ascii_lowercase(),
            Self::Upper => variant.to_ascii_uppercase(),
            Self::Camel => {
                let mut chars = variant.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                    None => String::new(),
                }
            }
            Self::Snake | Self::ScreamingSnake | Self::Kebab | Self::ScreamingKebab => {
                Self::apply_to_field(self, &snake_case(variant))
            }
        }
    }
}

/// `OrderItem` → `order_item`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The default collection name: snake_case, pluralized with English's regular rules
/// (`User` → `users`, `Address` → `addresses`, `Category` → `categories`).
pub fn collection_name(type_name: &str) -> String {
    let snake = snake_case(type_name);
    let vowel_before_y = snake.len() >= 2
        && matches!(
            snake.as_bytes()[snake.len() - 2],
            b'a' | b'e' | b'i' | b'o' | b'u'
        );
    if snake.ends_with('y') && !vowel_before_y {
        format!("{}ies", &snake[..snake.len() - 1])
    } else if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|end| snake.ends_with(end))
    {
        format!("{snake}es")
    } else {
        format!("{snake}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_serde() {
        assert_eq!(RenameRule::Camel.apply_to_field("created_at"), "createdAt");
        assert_eq!(RenameRule::Pascal.apply_to_field("created_at"), "CreatedAt");
        assert_eq!(
            RenameRule::ScreamingKebab.apply_to_field("created_at"),
            "CREATED-AT"
        );
    }

    #[test]
    fn collection_names() {
        assert_eq!(collection_name("User"), "users");
        assert_eq!(collection_name("OrderItem"), "order_items");
        assert_eq!(collection_name("Address"), "addresses");
        assert_eq!(collection_name("Category"), "categories");
        assert_eq!(collection_name("Key"), "keys");
    }
}
