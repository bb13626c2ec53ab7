//! What the kernel knows about the processes under test, read from /proc: CPU time and resident
//! memory of the server (and of this generator, to tell when the generator is the bottleneck),
//! and the state of the server's end of given TCP connections (to see when it drops a client
//! that stopped reading, without that client having to read anything).

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Instant;

use anyhow::{Context, Result};

/// Clock ticks per second for utime/stime in /proc/<pid>/stat. 100 on every Linux this runs on
/// (x86-64 and arm64 kernels export USER_HZ = 100).
const TICKS: f64 = 100.0;

/// CPU seconds (user + system) and resident bytes of a process, at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu_s: f64,
    pub rss: u64,
    pub at: Instant,
}

pub fn usage(pid: u32) -> Result<Usage> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    let after_comm = stat.rsplit_once(')').context("stat format")?.1;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat: 11 and 12 after the comm field.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(Usage {
        cpu_s: ticks / TICKS,
        rss: rss(pid)?,
        at,
    })
}

/// Resident set size (VmRSS of /proc/<pid>/status), bytes.
pub fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .context("VmRSS")?
        .parse()?;
    Ok(kb * 1024)
}

pub fn own_usage() -> Result<Usage> {
    usage(std::process::id())
}

/// Usage of `pid` (when known) and of this generator, taken together.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub server: Option<Usage>,
    pub generator: Usage,
}

pub fn sample(pid: Option<u32>) -> Result<Sample> {
    Ok(Sample {
        server: pid.map(usage).transpose()?,
        generator: own_usage()?,
    })
}

/// What happened between two samples.
#[derive(Debug, Clone, Copy)]
pub struct Delta {
    pub wall_s: f64,
    /// Server CPU seconds in the interval, when the server's pid is known.
    pub server_cpu_s: Option<f64>,
    pub server_rss_end: Option<u64>,
    pub generator_cpu_s: f64,
}

impl Delta {
    pub fn between(a: &Sample, b: &Sample) -> Self {
        Self {
            wall_s: b.generator.at.duration_since(a.generator.at).as_secs_f64(),
            server_cpu_s: a.server.zip(b.server).map(|(a, b)| b.cpu_s - a.cpu_s),
            server_rss_end: b.server.map(|u| u.rss),
            generator_cpu_s: b.generator.cpu_s - a.generator.cpu_s,
        }
    }

    /// Share of one core the generator used; near 100 % means the numbers are the
    /// generator's limit, not the server's.
    pub fn generator_pct(&self) -> f64 {
        100.0 * self.generator_cpu_s / self.wall_s.max(1e-9)
    }

    pub fn server_pct(&self) -> Option<f64> {
        self.server_cpu_s.map(|c| 100.0 * c / self.wall_s.max(1e-9))
    }
}

/// Read and write system calls the process has made (/proc/<pid>/io).
fn syscalls(pid: u32) -> Result<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    Ok(io
        .lines()
        .filter(|l| l.starts_with("syscr:") || l.starts_with("syscw:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum())
}

/// Waits until the server is idle: under 3 % CPU and almost no read/write calls over two
/// half-second intervals in a row (at most `max`). A server still working off the previous
/// step's backlog would otherwise be measured in the next one; CPU alone does not show a
/// server that is waiting on fsync.
pub async fn wait_quiet(pid: Option<u32>, max: std::time::Duration) -> Result<std::time::Duration> {
    let Some(pid) = pid else {
        return Ok(std::time::Duration::ZERO);
    };
    let t = Instant::now();
    let mut last = (usage(pid)?.cpu_s, syscalls(pid)?);
    let mut quiet = 0;
    while quiet < 2 && t.elapsed() < max {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let now = (usage(pid)?.cpu_s, syscalls(pid)?);
        quiet = if now.0 - last.0 < 0.015 && now.1 - last.1 < 50 {
            quiet + 1
        } else {
            0
        };
        last = now;
    }
    Ok(t.elapsed())
}

/// Median time of 20 small `fdatasync`s of a file in `dir`: the price of one durable commit
/// on this disk right now. It varies with what else the machine writes (see docs/perf.md).
pub fn fsync_ms(dir: &std::path::Path) -> Result<f64> {
    use std::io::Write as _;
    let path = dir.join(".fsync-probe");
    let mut f = std::fs::File::create(&path)?;
    let block = [7u8; 4096];
    let mut times = Vec::new();
    for _ in 0..20 {
        f.write_all(&block)?;
        let t = Instant::now();
        f.sync_data()?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    drop(f);
    std::fs::remove_file(&path).ok();
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// `/proc/net/tcp` writes an IPv4 address as the 32-bit word in host order (little-endian on
/// x86-64 and arm64), in hex, then the port in hex.
fn hex_addr(a: SocketAddrV4) -> String {
    format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(a.ip().octets()),
        a.port()
    )
}

/// Of the given client addresses, those whose connection to `server` the server side no longer
/// holds open (its socket is gone or past ESTABLISHED: it closed the connection). A client that
/// never reads cannot see the close itself; the kernel can.
pub fn server_closed(server: SocketAddr, clients: &[SocketAddr]) -> Result<HashSet<SocketAddr>> {
    let SocketAddr::V4(server) = server else {
        anyhow::bail!("IPv4 only")
    };
    let table = std::fs::read_to_string("/proc/net/tcp")?;
    let local = hex_addr(server);
    let established: HashSet<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, loc, rem, st) = (f.next()?, f.next()?, f.next()?, f.next()?);
            (loc == local && st == "01").then_some(rem)
        })
        .collect();
    Ok(clients
        .iter()
        .filter(|c| match c {
            SocketAddr::V4(c) => !established.contains(hex_addr(*c).as_str()),
            SocketAddr::V6(_) => false,
        })
        .copied()
        .collect())
}

/// The source address for the `i`-th client socket: 127.0.0.1 ..= 127.0.0.<n>, in turn.
pub fn source_ip(i: usize, n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(n)) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_proc_net_tcp_writes_them() {
        let a = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 5), 8080);
        assert_eq!(hex_addr(a), "0500007F:1F90");
    }

    #[test]
    fn own_usage_is_readable() {
        let u = own_usage().unwrap();
        assert!(u.rss > 0);
    }
}
