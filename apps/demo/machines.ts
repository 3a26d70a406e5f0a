/** What the hub serves for the demo: the board (board.ts) and the card descriptions (card-text.ts). */
import { Board } from "./board.js"
import { CardText } from "./card-text.js"

export const demoMachines = [Board, CardText] as const
