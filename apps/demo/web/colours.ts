/**
 * Colours of the people on a board: every page sorts the clientIds present and gives the
 * i-th one the i-th hue of a golden-angle walk, so no two people present share a colour and
 * everyone sees the same colour for the same person.
 */
export const colourOf = (clientId: string, present: Iterable<string>): string => {
  const ids = [...new Set(present)].sort()
  const i = Math.max(0, ids.indexOf(clientId))
  const hue = Math.round((i * 137.508 + 215) % 360)
  return `hsl(${hue} 68% 42%)`
}
