//! cluster: a JetStream cluster on loopback, every node running the committed
//! `nats/conf/cluster.conf` as a deployment would.

use crate::server::{NatsServer, nats_server_binary, workspace_root};
use anyhow::{Context as _, bail};
use std::time::{Duration, Instant};

/// A JetStream cluster on loopback, each node running the committed `nats/conf/cluster.conf`
/// (with its `auth.conf`) as a deployment would, on ports and store directories of its own.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` nodes; every user of `auth.conf` gets `password`. The nodes are ready for
    /// clients at once; JetStream answers once they have elected a meta leader (services retry).
    pub fn start(size: usize, password: &str) -> anyhow::Result<NatsCluster> {
        let conf = workspace_root().join("nats/conf/cluster.conf");
        let cluster_ports = free_ports(size)?;
        let routes = cluster_ports
            .iter()
            .map(|p| format!("nats-route://route:{password}@127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::new();
        for (i, cluster_port) in cluster_ports.iter().enumerate() {
            let mut env: Vec<(String, String)> = nats::messaging::users::users()
                .map(|user| {
                    (
                        nats::messaging::users::password_variable(user),
                        password.to_owned(),
                    )
                })
                .collect();
            env.extend([
                ("NATS_SERVER_NAME".to_owned(), format!("node-{}", i + 1)),
                ("NATS_CLUSTER_PORT".to_owned(), cluster_port.to_string()),
                ("NATS_ROUTES".to_owned(), format!("[{routes}]")),
                ("NATS_ROUTE_PASSWORD".to_owned(), password.to_owned()),
            ]);
            let dir = tempfile::Builder::new()
                .prefix("nats-node-")
                .tempdir()
                .context("create a store directory")?;
            env.push((
                "NATS_STORE_DIR".to_owned(),
                dir.path().join("store").display().to_string(),
            ));
            let mut node = NatsServer {
                bin: nats_server_binary()?,
                dir,
                port: 0,
                args: vec!["-c".to_owned(), conf.display().to_string()],
                env,
                child: None,
            };
            node.spawn()
                .with_context(|| format!("start cluster node {}", i + 1))?;
            nodes.push(node);
        }
        let cluster = NatsCluster { nodes };
        cluster.wait_for_meta_leader()?;
        Ok(cluster)
    }

    /// Until the nodes have elected a JetStream meta leader, JetStream requests go unanswered
    /// (clients time out): a deployment waits for this as the harness does.
    fn wait_for_meta_leader(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let elected = self.nodes.iter().any(|n| {
                let log = std::fs::read_to_string(n.log_path()).unwrap_or_default();
                log.contains("Self is new JetStream cluster metadata leader")
                    || log.contains("JetStream cluster new metadata leader")
            });
            if elected {
                return Ok(());
            }
            if Instant::now() > deadline {
                // What each node went through, for the failure to say why.
                let tails: String = self
                    .nodes
                    .iter()
                    .map(|n| {
                        let log = std::fs::read_to_string(n.log_path()).unwrap_or_default();
                        let lines: Vec<&str> = log.lines().collect();
                        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
                        format!("--- {} ---\n{tail}\n", n.log_path().display())
                    })
                    .collect();
                bail!("the cluster elected no JetStream meta leader within 30 s\n{tails}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `n` distinct ports nobody listens on now, for settings that cannot ask the server for a
/// random one (a cluster's route ports must be known to every node before they start). All are
/// held until all are found: ports taken one by one and let go may repeat.
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let held = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").context("find a free port"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}
