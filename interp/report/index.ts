// Report building blocks: figure specs and rendering, step report records, HTML and Markdown.
export * from './figures.ts';
export * from './svg-ids.ts';
export * from './types.ts';
export * from './html.ts';
