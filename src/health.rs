//! Whether the database answers: what `/healthz` asks, apart from the
//! domain's store traits so that the web pages need none of the others.

use async_trait::async_trait;

use crate::error::StoreError;

#[async_trait]
pub trait HealthCheck: Send + Sync {
    /// A round trip to the database.
    async fn ping(&self) -> Result<(), StoreError>;
}
