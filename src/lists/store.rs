//! What lists need from storage; `crate::store` implements it.

use async_trait::async_trait;

use super::{List, ListOption, ListSlug, NewList};
use crate::error::StoreError;

#[async_trait]
pub trait ListStore: Send + Sync {
    /// Creates a list; a slug in use is a [`StoreError::Conflict`].
    async fn create_list(&self, list: &NewList) -> Result<List, StoreError>;
    /// Every list, by position then slug, with its counts.
    async fn lists(&self) -> Result<Vec<List>, StoreError>;
    async fn list(&self, slug: &ListSlug) -> Result<List, StoreError>;
    /// Every list, by position then slug, without counts: cheap enough for
    /// each page view.
    async fn list_options(&self) -> Result<Vec<ListOption>, StoreError>;
    async fn rename_list(&self, slug: &ListSlug, name: &str) -> Result<List, StoreError>;
    /// Moves a list among the others: lower positions are shown first.
    async fn set_list_position(&self, slug: &ListSlug, position: i32) -> Result<List, StoreError>;
    /// Deletes a list. While it has subscribers this is refused unless `force`,
    /// which also deletes their subscriptions to it (not the subscribers).
    async fn delete_list(&self, slug: &ListSlug, force: bool) -> Result<(), StoreError>;
}
