// The one piece of shader templating: what a WGSL `override` cannot express — an element type,
// and the `enable f16;` directive that must open a module using f16. A shader declares its
// templated type as `alias WT = f32;` (valid WGSL as written, so the f32 variant is the file
// itself); withElementType(src, 'f16') rewrites that line and prepends the directive.
export type ElementType = 'f32' | 'f16';

const ALIAS = /^alias WT = f32;/m;

export function withElementType(src: string, elem: ElementType): string {
  if (!ALIAS.test(src)) throw new Error("withElementType: shader has no 'alias WT = f32;' line");
  if (elem === 'f32') return src;
  return `enable f16;\n${src.replace(ALIAS, 'alias WT = f16;')}`;
}
