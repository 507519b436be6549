// bench/*.py are inlined as text by the build (scripts/build.mjs: loader '.py' → text).
declare module '*.py' {
  const source: string;
  export default source;
}
