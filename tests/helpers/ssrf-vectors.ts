import type { HostResolver } from '../../src/egress/ssrf'

/**
 * A stand-in public address for names the stub resolver calls public. Tests only ever check
 * it; a connector that would dial it fails the test instead.
 */
export const PUBLIC_IP = '93.184.215.14'

/**
 * Stub DNS for the SSRF tests (RELIABILITY.md S2): names that resolve to blocked addresses,
 * one with a public and a private address, one that fails, one with no address, and a
 * rebinding name that answers public the first time and private ever after.
 */
export function ssrfResolver(): HostResolver & { lookups: string[] } {
  const lookups: string[] = []
  const answers: Record<string, string[]> = {
    'public.example.test': [PUBLIC_IP],
    'public6.example.test': ['2606:4700:4700::1111'],
    localhost: ['127.0.0.1', '::1'],
    'localhost.': ['127.0.0.1'],
    'internal.example.test': ['10.0.0.5'],
    'corp.example.test': ['172.20.1.1'],
    'home.example.test': ['192.168.1.10'],
    'cgnat.example.test': ['100.64.12.34'],
    'metadata.example.test': ['169.254.169.254'],
    '169.254.169.254.nip.example.test': ['169.254.169.254'],
    'ula.example.test': ['fd12:3456::1'],
    'linklocal6.example.test': ['fe80::1'],
    'mapped.example.test': ['::ffff:127.0.0.1'],
    'zero.example.test': ['0.0.0.0'],
    'mixed.example.test': [PUBLIC_IP, '10.0.0.1'],
    'empty.example.test': [],
  }
  let rebinds = 0
  const resolve: HostResolver = async (host) => {
    lookups.push(host)
    if (host === 'rebind.example.test') {
      rebinds++
      return [{ address: rebinds === 1 ? PUBLIC_IP : '10.0.0.1', family: 4 }]
    }
    const found = answers[host]
    if (!found)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })
    return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
  }
  return Object.assign(resolve, { lookups })
}

/** URLs that must never be called (≥ 60, RELIABILITY.md S2), by what they try. */
export const BLOCKED_URLS: Record<string, string[]> = {
  'loopback, in every spelling': [
    'http://127.0.0.1/',
    'http://127.0.0.1:8080/hook',
    'https://127.255.255.254/',
    'http://127.1/',
    'http://127.0.1/',
    'http://2130706433/',
    'http://0177.0.0.1/',
    'http://0x7f.1/',
    'http://0x7f000001/',
    'http://017700000001/',
    'http://0x7f.0x0.0x0.0x1/',
    'http://127.000.000.001/',
    'http://%31%32%37.0.0.1/',
    'http://127.0.0.1./',
    'http://[::1]/',
    'http://[0:0:0:0:0:0:0:1]:8080/',
  ],
  unspecified: ['http://0.0.0.0/', 'http://0/', 'http://0.1.2.3/', 'http://[::]/'],
  'private (RFC 1918)': [
    'http://10.0.0.1/',
    'http://10.255.255.255/',
    'http://012.0.0.1/',
    'http://167772161/',
    'http://172.16.0.1/',
    'http://172.31.255.255/',
    'http://192.168.0.1/',
    'http://0xc0a80001/',
    'http://3232235521/',
  ],
  CGNAT: ['http://100.64.0.1/', 'http://100.127.255.254/'],
  'link-local and metadata': [
    'http://169.254.169.254/latest/meta-data/',
    'http://169.254.0.1/',
    'http://2852039166/',
    'http://0xa9fea9fe/',
    'http://[fd00:ec2::254]/',
    'http://[fe80::1]/',
    'http://[fe80::a9fe:a9fe]/',
  ],
  'benchmark, documentation, reserved, multicast, broadcast': [
    'http://198.18.0.1/',
    'http://198.19.255.254/',
    'http://192.0.2.1/',
    'http://198.51.100.7/',
    'http://203.0.113.9/',
    'http://192.0.0.170/',
    'http://240.0.0.1/',
    'http://224.0.0.1/',
    'http://239.255.255.250/',
    'http://255.255.255.255/',
    'http://[ff02::1]/',
    'http://[2001:db8::1]/',
  ],
  'IPv6 ULA, mapped, compatible, NAT64, 6to4': [
    'http://[fc00::1]/',
    'http://[fdff:ffff::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://[0:0:0:0:0:ffff:127.0.0.1]/',
    'http://[::ffff:10.0.0.1]/',
    'http://[::ffff:169.254.169.254]/',
    'http://[::127.0.0.1]/',
    'http://[64:ff9b::7f00:1]/',
    'http://[2002:7f00:1::]/',
  ],
  'user info tricks': [
    `http://user:pass@${PUBLIC_IP}/`,
    'http://public.example.test@127.0.0.1/',
    'http://127.0.0.1@public.example.test/',
    'http://public.example.test:80@127.0.0.1/',
    'https://token@public.example.test/hook',
  ],
  'brackets around what is no IPv6': [
    'http://[127.0.0.1]/',
    'http://[localhost]/',
    'http://[public.example.test]/',
  ],
  'not http(s)': [
    'ftp://public.example.test/',
    'file:///etc/passwd',
    'gopher://127.0.0.1:6379/_INFO',
    'dict://127.0.0.1:11211/',
    'ws://public.example.test/',
    'javascript:alert(1)',
    'data:text/plain,hello',
  ],
  'names the stub resolves to blocked addresses': [
    'http://localhost/',
    'http://LOCALHOST./',
    'http://internal.example.test/',
    'http://corp.example.test/',
    'http://home.example.test/',
    'http://cgnat.example.test/',
    'http://metadata.example.test/latest/meta-data/',
    'http://169.254.169.254.nip.example.test/',
    'https://ula.example.test/',
    'http://linklocal6.example.test/',
    'http://mapped.example.test/',
    'http://zero.example.test/',
    'http://mixed.example.test/',
    'http://nxdomain.example.test/',
    'http://empty.example.test/',
  ],
}

export const ALL_BLOCKED_URLS = Object.values(BLOCKED_URLS).flat()
