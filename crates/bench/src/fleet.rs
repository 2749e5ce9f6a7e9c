//! The target fleet: banner listeners on loopback, like an FTP or SMTP server's greeting.
//!
//! On accept it writes `220 ready\r\n`, does one short read (client data, FIN or RST) and
//! closes; a connection that stays idle is closed after `--idle-ms`. It listens on one or
//! more loopback addresses (`--host 127.0.0.1,127.0.0.2`, `--count` listeners on each) and
//! prints one stdout line per address, in the order given (`ports 34000-34999`), once every
//! listener is bound; it exits when its stdin closes, so it never outlives the orchestrator
//! that started it.

use std::io::{BufRead, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::ports;

/// The greeting every listener sends.
pub const BANNER: &[u8] = b"220 ready\r\n";

/// Options of `bench fleet`.
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Number of listeners on each address.
    #[arg(long, default_value_t = 1000)]
    pub count: u16,
    /// First port of a consecutive block; 0 lets the kernel pick free ports.
    #[arg(long, default_value_t = 0)]
    pub base_port: u16,
    /// Addresses to listen on, comma-separated (loopback only: this is load traffic).
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
    pub host: Vec<IpAddr>,
    /// Runtime worker threads (it shares the cores with the load); 1: a current-thread runtime.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Close connections idle for this long, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub idle_ms: u64,
}

/// Serves until stdin closes.
pub fn run(args: &FleetArgs) -> anyhow::Result<()> {
    if let Some(host) = args.host.iter().find(|h| !h.is_loopback()) {
        anyhow::bail!("the fleet listens on loopback only, not {host}");
    }
    anyhow::ensure!(!args.host.is_empty(), "--host needs an address");
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    let runtime = if args.workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.workers)
            .enable_all()
            .build()
    }
    .context("starting the fleet's runtime")?;
    let idle = Duration::from_millis(args.idle_ms);
    runtime.block_on(async {
        let mut lines = Vec::with_capacity(args.host.len());
        for &host in &args.host {
            let listeners = bind_all(args, host).await?;
            let bound: Vec<u16> = listeners
                .iter()
                .map(|l| l.local_addr().map(|a| a.port()))
                .collect::<Result<_, _>>()
                .context("reading a listener's port")?;
            for listener in listeners {
                tokio::spawn(accept_loop(listener, idle));
            }
            lines.push(format!("ports {}", ports::format(&bound)));
        }
        let mut out = std::io::stdout().lock();
        for line in lines {
            writeln!(out, "{line}").context("writing the port list")?;
        }
        out.flush().context("writing the port list")?;
        drop(out);
        // The orchestrator holds our stdin open for as long as it needs us; a thread waits
        // for its end so that a current-thread runtime keeps serving meanwhile.
        let (closed, on_close) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().lock().read_to_end(&mut sink);
            let _ = closed.send(());
        });
        let _ = on_close.await;
        anyhow::Ok(())
    })?;
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

async fn bind_all(args: &FleetArgs, host: IpAddr) -> anyhow::Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(usize::from(args.count));
    for i in 0..args.count {
        let port = if args.base_port == 0 {
            0
        } else {
            args.base_port
                .checked_add(i)
                .context("--base-port + --count passes 65535")?
        };
        let addr = SocketAddr::new(host, port);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr} (listener {} of {})", i + 1, args.count))?;
        listeners.push(listener);
    }
    Ok(listeners)
}

async fn accept_loop(listener: TcpListener, idle: Duration) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, idle));
            }
            // Out of file descriptors or a connection aborted before accept: keep serving.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

async fn serve(mut stream: TcpStream, idle: Duration) {
    if stream.write_all(BANNER).await.is_err() {
        return;
    }
    let mut buf = [0u8; 64];
    let _ = tokio::time::timeout(idle, stream.read(&mut buf)).await;
}

/// Reads the fleet's `ports …` line from its stdout (a fleet on one address).
pub fn read_ports(stdout: impl Read) -> anyhow::Result<Vec<u16>> {
    let mut lists = read_port_lines(stdout, 1)?;
    lists.pop().context("the fleet printed no port list")
}

/// Reads the fleet's `hosts` lines of `ports …`, one per address in the order given.
pub fn read_port_lines(stdout: impl Read, hosts: usize) -> anyhow::Result<Vec<Vec<u16>>> {
    let mut reader = std::io::BufReader::new(stdout);
    let mut lists = Vec::with_capacity(hosts);
    for _ in 0..hosts {
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .context("reading the fleet's port list")?;
        let list = line
            .trim()
            .strip_prefix("ports ")
            .with_context(|| format!("the fleet said {line:?} instead of its ports"))?;
        lists.push(ports::parse(list)?);
    }
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listener_greets_then_closes_after_the_client_speaks() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(accept_loop(listener, Duration::from_secs(2)));
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut got = [0u8; BANNER.len()];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, BANNER);
        client.write_all(b"QUIT\r\n").await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connection_is_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(accept_loop(listener, Duration::from_millis(50)));
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, BANNER);
    }

    #[test]
    fn port_line_is_parsed() {
        assert_eq!(
            read_ports(&b"ports 40000-40002\n"[..]).unwrap(),
            vec![40000, 40001, 40002]
        );
        assert!(read_ports(&b"error: busy\n"[..]).is_err());
        assert_eq!(
            read_port_lines(&b"ports 40000-40001\nports 40002\n"[..], 2).unwrap(),
            vec![vec![40000, 40001], vec![40002]]
        );
        assert!(read_port_lines(&b"ports 40000\n"[..], 2).is_err());
    }
}
