import { afterAll, beforeAll } from 'bun:test'
import { closeSharedDeps, setInfra } from './helpers/harness'
import { type Infra, startInfra } from './helpers/infra'

let infra: Infra | undefined

beforeAll(async () => {
  infra = await startInfra()
  setInfra(infra)
})

afterAll(async () => {
  await closeSharedDeps()
  await infra?.stop()
  setInfra(undefined)
})
