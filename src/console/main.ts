/**
 * The operator console served at `/console`: a hash-routed page over the public API, signed
 * in with a token kept in session storage. Every few seconds it samples the JSON metrics
 * (the history behind its charts) and refreshes the page shown.
 */
import { type Credentials, clearCredentials, loadCredentials, onUnauthorized } from './api'
import { fill, h } from './dom'
import type { Page } from './page'
import { deadLetterQueuesPage, deadLettersPage } from './pages/dead-letters'
import { loginPage } from './pages/login'
import { messagePage } from './pages/message'
import { overviewPage } from './pages/overview'
import { queuePage, queuesPage } from './pages/queues'
import { schedulesPage } from './pages/schedules'
import { subscriptionPage, subscriptionsPage } from './pages/subscriptions'
import { clearSamples, POLL_MS, takeSample } from './samples'

const root = document.getElementById('app')!

const SECTIONS = [
  ['overview', 'Overview'],
  ['queues', 'Queues'],
  ['subscriptions', 'Subscriptions'],
  ['dead-letters', 'Dead letters'],
  ['schedules', 'Schedules'],
] as const

/** The page for the current `#/section/argument`. */
function pageFor(section: string, arg: string | undefined): Page {
  switch (section) {
    case 'queues':
      return arg ? queuePage(arg) : queuesPage()
    case 'subscriptions':
      return arg ? subscriptionPage(arg) : subscriptionsPage()
    case 'dead-letters':
      return arg ? deadLettersPage(arg) : deadLetterQueuesPage()
    case 'schedules':
      return schedulesPage()
    case 'message':
      return arg ? messagePage(arg) : overviewPage()
    default:
      return overviewPage()
  }
}

/** Who the console acts as, for the header: the tenant, and the token's subject if it has one. */
function identity(credentials: Credentials): string {
  if (credentials.kind === 'service') return `tenant ${credentials.tenantId} (service token)`
  try {
    // Shown, not trusted: the API verifies the token on every call.
    const part = credentials.token.split('.')[1] ?? ''
    const claims = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as {
      tid?: string
      sub?: string
    }
    return `tenant ${claims.tid ?? '?'}${claims.sub ? ` as ${claims.sub}` : ''}`
  } catch {
    return 'token'
  }
}

// Bumped at every sign-in and sign-out, so a poll loop of an earlier session stops.
let session = 0
let current: Page | undefined

function signIn(credentials: Credentials) {
  const mine = ++session
  const main = h('main', { id: 'main' })
  // What went wrong the last time the page was read; emptied when it reads again.
  const problem = h('div', { class: 'problem', role: 'alert' })
  const status = h('span', { class: 'live', 'aria-live': 'off' }, 'connecting…')
  const links = SECTIONS.map(([id, name]) => h('a', { href: `#/${id}`, 'data-section': id }, name))
  const signOutButton = h('button', { type: 'button', class: 'quiet' }, 'Sign out')
  signOutButton.addEventListener('click', () => signOut())
  fill(
    root,
    h('a', { href: '#main', class: 'skip' }, 'Skip to content'),
    h(
      'header',
      null,
      h('span', { class: 'brand' }, 'MQ console'),
      h('nav', { 'aria-label': 'Sections' }, ...links),
      h('span', { class: 'who' }, identity(credentials)),
      status,
      signOutButton
    ),
    main
  )

  async function refresh(page: Page) {
    try {
      await page.refresh()
      if (current === page) fill(problem)
    } catch (err) {
      if (current === page) fill(problem, err instanceof Error ? err.message : String(err))
    }
  }

  async function show() {
    const [, section = 'overview', ...rest] = location.hash.split('/')
    const arg = rest.length > 0 ? decodeURIComponent(rest.join('/')) : undefined
    for (const link of links) {
      if (link.dataset.section === section) link.setAttribute('aria-current', 'page')
      else link.removeAttribute('aria-current')
    }
    const page = pageFor(section, arg)
    current = page
    fill(problem)
    fill(main, problem, page.element)
    await refresh(page)
    if (current === page) {
      document.title = `${page.title} · MQ console`
      page.element.querySelector<HTMLElement>('h1')?.focus()
    }
  }

  async function poll() {
    if (mine !== session) return
    try {
      await takeSample()
      fill(status, `live · ${new Date().toLocaleTimeString()}`)
      status.classList.remove('down')
    } catch (err) {
      fill(status, `metrics unavailable: ${err instanceof Error ? err.message : String(err)}`)
      status.classList.add('down')
    }
    if (mine !== session) return
    if (current) await refresh(current)
    setTimeout(poll, POLL_MS)
  }

  window.onhashchange = () => void show()
  void takeSample()
    .catch(() => {})
    .then(show)
    .then(() => setTimeout(poll, POLL_MS))
}

function signOut(reason?: string) {
  session++
  current = undefined
  window.onhashchange = null
  clearCredentials()
  clearSamples()
  showLogin(reason)
}

function showLogin(reason?: string) {
  document.title = 'Sign in · MQ console'
  fill(
    root,
    h(
      'main',
      { id: 'main' },
      loginPage(() => signIn(loadCredentials()!), reason)
    )
  )
  root.querySelector<HTMLElement>('textarea, input')?.focus()
}

onUnauthorized(() => {
  if (current) signOut('The service no longer accepts the token (expired?). Sign in again.')
})

const saved = loadCredentials()
if (saved) signIn(saved)
else showLogin()
