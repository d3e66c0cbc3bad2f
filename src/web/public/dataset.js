// @ts-check
import { html, render } from 'lit-html'

/** @type {import('./ui.js').Page} */
export function datasetPage (root) {
  render(html`<h1>Data sets</h1>`, root)
}
