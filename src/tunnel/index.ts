/** WebSocket and other upgrades: the upstream try, the byte pipe, and a listener's set of open tunnels. */
export { CLOSE_WAIT_MS, LINGER_MS, Tunnel, type TunnelEnd, type TunnelResult } from './tunnel.js'
export { TunnelSet } from './tunnels.js'
export { type UpgradeHandler, type UpgradeTarget, upgradeTry } from './upgrade-call.js'
