//! The queries behind the archive and the metrics, shared by both backends
//! through [`impl_site_store`].

use async_trait::async_trait;

use crate::store::StoreError;

#[async_trait]
pub trait SiteStore: Send + Sync {
    /// A round trip that proves the queries of the pages work.
    async fn site_ping(&self) -> Result<(), StoreError>;
}

/// Implements [`SiteStore`] for a store type whose `pool` field is a
/// `sqlx::Pool<$db>`.
macro_rules! impl_site_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::web::SiteStore for $store {
            async fn site_ping(&self) -> Result<(), $crate::store::StoreError> {
                todo!("SKELETON")
            }
        }
    };
}

pub(crate) use impl_site_store;
