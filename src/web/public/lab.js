// @ts-check
import { html, render } from 'lit-html'

/** @type {import('./ui.js').Page} */
export function labPage (root) {
  render(html`<h1>Lesson lab</h1>`, root)
}
