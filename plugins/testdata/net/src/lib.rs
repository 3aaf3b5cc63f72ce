//! Breaks the no-network promise: imports `wasi:sockets` (instance-network, tcp-create-socket)
//! and calls them in `evaluate`; it allows, reporting what it got as warnings.

use switchyard_policy_kit::prelude::*;

pub struct Plugin;

impl Policy for Plugin {
    const NAME: &'static str = "net";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(_ctx: &Context) -> Decision {
        probe()
    }
}

#[cfg(target_arch = "wasm32")]
fn probe() -> Decision {
    use wasi::sockets::network::IpAddressFamily;
    use wasi::sockets::{instance_network, tcp_create_socket};

    let network = instance_network::instance_network();
    let socket = match tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4) {
        Ok(_socket) => "net: created a TCP socket".to_owned(),
        Err(err) => format!("net: create-tcp-socket: error: {err:?}"),
    };
    drop(network);
    Decision::allow()
        .with_warning("net: got the instance network")
        .with_warning(socket)
}

#[cfg(not(target_arch = "wasm32"))]
fn probe() -> Decision {
    Decision::allow().with_warning("net: not built for wasm32")
}

export_policy!(Plugin);
