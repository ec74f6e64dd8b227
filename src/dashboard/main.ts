/** The dashboard's entry point (bundled by scripts/build-dashboard.ts into dist/dashboard/app.js and app.css). */
import 'uplot/dist/uPlot.min.css'
import './styles.css'
import { html } from 'htm/preact'
import { render } from 'preact'
import { App } from './app.js'

const root = document.getElementById('app')
if (root !== null) {
  root.textContent = ''
  render(html`<${App} />`, root)
}
