//! state: what every handler of the gateway shares — its settings, the token verifier, the
//! upstreams, the catalog kept for when concert-svc is down, the services' API documents.

use crate::config::Config;
use crate::{memory, upstream};
use nats::web::auth::Auth;
use std::sync::Arc;

pub struct Gateway {
    pub(crate) config: Config,
    pub(crate) auth: Arc<Auth>,
    pub(crate) upstreams: upstream::Upstreams,
    pub(crate) catalog: memory::Catalog,
    pub(crate) documents: memory::Documents,
}

impl Gateway {
    pub fn new(config: Config) -> anyhow::Result<Arc<Gateway>> {
        Ok(Arc::new(Gateway {
            auth: Auth::from_config(&config.auth)?,
            upstreams: upstream::Upstreams::new(&config)?,
            catalog: memory::Catalog::default(),
            documents: memory::Documents::default(),
            config,
        }))
    }
}
