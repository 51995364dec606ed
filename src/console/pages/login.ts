import { ApiError, api, type Credentials, clearCredentials, ok, saveCredentials } from '../api'
import { fill, h } from '../dom'
import { heading } from '../page'

/** The two ways to sign in, each with its fields; `read` gives the credentials entered. */
function credentialFields() {
  const jwt = h('input', {
    type: 'radio',
    name: 'kind',
    id: 'kind-token',
    value: 'token',
    checked: true,
  })
  const service = h('input', { type: 'radio', name: 'kind', id: 'kind-service', value: 'service' })
  const token = h('textarea', { id: 'token', rows: 4, spellcheck: 'false', autocomplete: 'off' })
  const serviceToken = h('input', { id: 'service-token', type: 'password', autocomplete: 'off' })
  const tenantId = h('input', {
    id: 'tenant-id',
    autocomplete: 'off',
    pattern: '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}',
    placeholder: '00000000-0000-0000-0000-000000000000',
  })
  const tokenFields = h('div', null, h('label', { for: 'token' }, 'Token (JWT)'), token)
  const serviceFields = h(
    'div',
    null,
    h('label', { for: 'service-token' }, 'Service token (INTERNAL_SERVICE_TOKEN)'),
    serviceToken,
    h('label', { for: 'tenant-id' }, 'Tenant id'),
    tenantId
  )
  const showFields = () => {
    tokenFields.hidden = !jwt.checked
    serviceFields.hidden = jwt.checked
    token.required = jwt.checked
    serviceToken.required = tenantId.required = !jwt.checked
  }
  jwt.addEventListener('change', showFields)
  service.addEventListener('change', showFields)
  showFields()
  const elements = [
    h(
      'fieldset',
      null,
      h('legend', null, 'With'),
      h('label', { class: 'choice' }, jwt, ' a token'),
      h('label', { class: 'choice' }, service, ' the service token and a tenant')
    ),
    tokenFields,
    serviceFields,
  ]
  const read = (): Credentials =>
    jwt.checked
      ? { kind: 'token', token: token.value.trim().replace(/^Bearer\s+/i, '') }
      : { kind: 'service', serviceToken: serviceToken.value, tenantId: tenantId.value.trim() }
  return { elements, read }
}

/** Why the service refused to sign in, in the operator's terms. */
const refusal = (err: unknown) =>
  err instanceof ApiError && err.status === 401
    ? 'The service refused these credentials (wrong, expired, or signed with another secret).'
    : err instanceof ApiError && err.status === 403
      ? 'These credentials may not read queues (they need mq:read or mq:admin).'
      : `Could not sign in: ${err instanceof Error ? err.message : String(err)}`

/**
 * Asks for a token once per tab: a JWT with the tenant in `tid`, or the service token and a
 * tenant id. It is tried on `GET /queues` before the console opens; `signedIn` runs after.
 */
export function loginPage(signedIn: () => void, reason?: string): HTMLElement {
  const problem = h('p', { class: 'problem', role: 'alert' }, reason ?? '')
  const fields = credentialFields()
  const submit = h('button', { type: 'submit' }, 'Sign in')
  const form = h(
    'form',
    { class: 'login stacked-form', 'aria-labelledby': 'login-title' },
    heading('MQ console'),
    h('h2', { id: 'login-title' }, 'Sign in'),
    problem,
    ...fields.elements,
    submit,
    h(
      'p',
      { class: 'hint' },
      'A token for the local service: ',
      h('code', null, 'bun run token -- --tenant <uuid> --scope mq:admin'),
      '. It is kept in this tab only (session storage) until you sign out or close the tab.'
    )
  )
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    saveCredentials(fields.read())
    submit.disabled = true
    try {
      await ok(api.queues.$get({ query: { limit: '1' } }))
      signedIn()
    } catch (err) {
      clearCredentials()
      fill(problem, refusal(err))
      submit.disabled = false
    }
  })
  return h('div', { class: 'login-wrap' }, form)
}
