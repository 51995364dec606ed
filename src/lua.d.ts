declare module '*.lua' {
  const source: string
  export default source
}

declare module '*.wasm' {
  const path: string
  export default path
}

declare module '*.data' {
  const path: string
  export default path
}

declare module '*.css' {
  const source: string
  export default source
}

declare module '*.tar.gz' {
  const path: string
  export default path
}
