import { join } from 'node:path'
import { Redis } from 'ioredis'
import { type PrivateRedis, startPrivateRedis } from '../../src/local/redis-server'

/** A Redis Cluster of masters only, each a private redis-server on loopback. */
export interface RedisClusterProcesses {
  /** Seed nodes as `REDIS_CLUSTER_NODES` takes them: `127.0.0.1:<port>`. */
  nodes: string[]
  servers: PrivateRedis[]
  stop(): Promise<void>
}

/**
 * Starts `masters` redis-servers with cluster mode on, each in its own directory under
 * `dir`, joins them with `redis-cli --cluster create` (the slots split evenly, no replicas)
 * and waits until every node reports `cluster_state:ok`.
 */
export async function startRedisCluster(dir: string, masters = 3): Promise<RedisClusterProcesses> {
  const servers: PrivateRedis[] = []
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()))
  }
  try {
    for (let i = 0; i < masters; i++) {
      servers.push(
        await startPrivateRedis(join(dir, `node-${i}`), [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '5000',
        ])
      )
    }
    const nodes = servers.map((s) => `127.0.0.1:${s.port}`)
    const create = Bun.spawn(
      ['redis-cli', '--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'],
      { stdout: 'pipe', stderr: 'pipe' }
    )
    const [out, err] = await Promise.all([
      new Response(create.stdout).text(),
      new Response(create.stderr).text(),
    ])
    if ((await create.exited) !== 0) throw new Error(`redis-cli --cluster create: ${out}${err}`)
    for (const server of servers) await waitForClusterOk(server.url)
    return { nodes, servers, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** Polls CLUSTER INFO until the node sees every slot served (the gossip takes a moment). */
async function waitForClusterOk(url: string, timeoutMs = 20_000): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  try {
    const deadline = Date.now() + timeoutMs
    while (!(await client.cluster('INFO')).includes('cluster_state:ok')) {
      if (Date.now() > deadline) throw new Error(`cluster at ${url} not ok after ${timeoutMs} ms`)
      await Bun.sleep(50)
    }
  } finally {
    client.disconnect()
  }
}
