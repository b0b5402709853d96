/** Every workflow the lensflow worker registers. */
export { trainingPipeline } from './trainingPipeline';
